// Signal: wakes one coroutine waiting for "something changed" on a single-threaded executor.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::net {

// A notification that arrives while nobody waits is kept, so a waiter that checks its condition
// and then waits can never miss a wake-up. Waiters re-check their condition after waking.
class Signal {
 public:
  explicit Signal(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  boost::asio::awaitable<void> wait() {
    if (!pending_) {
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
      waiting_ = true;
      struct Waited {
        bool& flag;
        ~Waited() { flag = false; }  // also when the wait is cancelled
      } waited{waiting_};
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    pending_ = false;
  }

  void notify() {
    pending_ = true;
    // Cancelling takes the reactor's timer lock: not worth it when nobody waits, which is most
    // notifications on a busy tunnel.
    if (waiting_) timer_.cancel();
  }

 private:
  boost::asio::steady_timer timer_;
  bool pending_ = false;
  bool waiting_ = false;
};

}  // namespace sluice::net
