#include "core/net/listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/net/authority.h"

namespace sluice::net {

namespace asio = boost::asio;
using asio::ip::tcp;

asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor, AcceptHandler on_accept,
                                 AcceptOptions options, std::shared_ptr<const bool> alive) {
  const auto ex = acceptor.get_executor();
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_log{};
  uint64_t failures = 0;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (alive && !*alive) co_return;
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      ++failures;
      if (Clock::now() - last_log >= options.log_interval) {
        spdlog::warn(
            "{}: accept failed: {} ({} failure(s) since the last report; retrying every "
            "{} ms)",
            options.name, ec.message(), failures, options.backoff.count());
        last_log = Clock::now();
        failures = 0;
      }
      asio::steady_timer backoff(ex, options.backoff);
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      if ((alive && !*alive) || !acceptor.is_open()) co_return;
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    on_accept(std::move(socket));
  }
}

TcpListener::TcpListener(tcp::acceptor acceptor) : acceptor_(std::move(acceptor)) {}

TcpListener::~TcpListener() { stop(); }

Result<std::unique_ptr<TcpListener>> TcpListener::create(asio::any_io_executor ex,
                                                         tcp::endpoint listen,
                                                         const SocketOptions& options) {
  auto acceptor = listenOn(ex, listen, options);
  if (!acceptor) return acceptor.error();
  return std::unique_ptr<TcpListener>(new TcpListener(std::move(*acceptor)));
}

void TcpListener::start(Handler handler) {
  const auto ex = acceptor_.get_executor();
  AcceptHandler spawn = [ex, handler = std::move(handler)](tcp::socket socket) {
    asio::co_spawn(ex, handler(std::move(socket)), asio::detached);
  };
  asio::co_spawn(ex,
                 acceptLoop(acceptor_, std::move(spawn),
                            {.name = "listener on " + formatAuthority(localEndpoint())}, alive_),
                 asio::detached);
}

void TcpListener::stop() {
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint TcpListener::localEndpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

}  // namespace sluice::net
