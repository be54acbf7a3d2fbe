#include "ztunnel/listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/net/sockets.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

TcpListener::TcpListener(tcp::acceptor acceptor) : acceptor_(std::move(acceptor)) {}

TcpListener::~TcpListener() { stop(); }

Result<std::unique_ptr<TcpListener>> TcpListener::create(asio::any_io_executor ex,
                                                         tcp::endpoint listen,
                                                         const net::SocketOptions& options) {
  auto acceptor = net::listenOn(ex, listen, options);
  if (!acceptor) return acceptor.error();
  return std::unique_ptr<TcpListener>(new TcpListener(std::move(*acceptor)));
}

void TcpListener::start(Handler handler) {
  asio::co_spawn(acceptor_.get_executor(), acceptLoop(std::move(handler), alive_), asio::detached);
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

asio::awaitable<void> TcpListener::acceptLoop(Handler handler, std::shared_ptr<bool> alive) {
  while (*alive) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
      spdlog::warn("accept on {}:{} failed: {}", localEndpoint().address().to_string(),
                   localEndpoint().port(), ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor_.get_executor(), handler(std::move(socket)), asio::detached);
  }
}

}  // namespace sluice::ztunnel
