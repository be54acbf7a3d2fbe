// Runs a coroutine test body on an io_context with a deadline: a hung test fails with a
// message instead of hanging CI. No sleeps: tests wait on events.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <functional>

namespace sluice::testing {

inline void runAsync(boost::asio::io_context& io,
                     std::function<boost::asio::awaitable<void>()> body,
                     std::chrono::seconds deadline = std::chrono::seconds(30)) {
  bool finished = false;
  std::exception_ptr error;
  boost::asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    finished = true;
    error = e;
    io.stop();
  });
  io.restart();
  io.run_for(deadline);
  if (error) std::rethrow_exception(error);
  ASSERT_TRUE(finished) << "test body did not finish within " << deadline.count() << " s";
}

// Waits until `condition` holds, re-checking each time the timer fires (a short poll interval
// with an overall deadline, for state that has no event to wait on).
inline boost::asio::awaitable<bool> eventually(std::function<bool()> condition,
                                               std::chrono::milliseconds deadline) {
  auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
  co_return true;
}

}  // namespace sluice::testing
