#include "core/net/sockets.h"

#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/net/authority.h"

namespace sluice::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

template <class Socket>
Result<void> prepare(Socket& socket, const tcp& protocol, const SocketOptions& options) {
  boost::system::error_code ec;
  if (options.make_socket) {
    auto fd = options.make_socket(protocol.family());
    if (!fd) return fd.error();
    socket.assign(protocol, *fd, ec);
  } else {
    socket.open(protocol, ec);
  }
  if (ec) return makeError("socket: " + ec.message());
  if (options.mark != 0 && ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_MARK, &options.mark,
                                        sizeof options.mark) != 0)
    return makeError(std::string("SO_MARK: ") + std::strerror(errno) + " (needs CAP_NET_ADMIN)");
  return success();
}

}  // namespace

Result<tcp::acceptor> listenOn(const asio::any_io_executor& ex, const tcp::endpoint& endpoint,
                               const SocketOptions& options) {
  const auto fail = [&](const std::string& what) {
    return makeError("listen on " + formatAuthority(endpoint) + ": " + what);
  };
  tcp::acceptor acceptor(ex);
  if (auto prepared = prepare(acceptor, endpoint.protocol(), options); !prepared)
    return fail(prepared.message());
  boost::system::error_code ec;
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (options.reuse_port) {
    const int one = 1;
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  acceptor.bind(endpoint, ec);
  if (ec) return fail("bind: " + ec.message());
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen: " + ec.message());
  return acceptor;
}

Result<tcp::socket> openSocket(const asio::any_io_executor& ex, const tcp& protocol,
                               const SocketOptions& options) {
  tcp::socket socket(ex);
  if (auto prepared = prepare(socket, protocol, options); !prepared) return prepared.error();
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  return socket;
}

asio::awaitable<Result<tcp::socket>> connectSocket(asio::any_io_executor ex, tcp::endpoint target,
                                                   SocketOptions options,
                                                   std::chrono::milliseconds timeout) {
  auto opened = openSocket(ex, target.protocol(), options);
  if (!opened) co_return opened.error();
  tcp::socket socket = std::move(*opened);
  asio::steady_timer deadline(ex, timeout);
  auto timed_out = std::make_shared<bool>(false);
  auto connected = std::make_shared<bool>(false);
  deadline.async_wait([&socket, timed_out, connected](boost::system::error_code wait_ec) {
    if (wait_ec || *connected) return;
    *timed_out = true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
  boost::system::error_code ec;
  co_await socket.async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
  *connected = true;  // a deadline that fired meanwhile must not touch the socket any more
  deadline.cancel();
  if (ec) co_return makeError(*timed_out ? std::string("timed out") : ec.message());
  co_return std::move(socket);
}

size_t sendNow(tcp::socket& socket, asio::const_buffer data, boost::system::error_code& ec) {
  ec.clear();
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(socket.native_handle(), static_cast<const char*>(data.data()) + sent,
                             data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      ec = boost::system::error_code(errno, boost::system::system_category());
    break;
  }
  return sent;
}

asio::awaitable<void> writeAll(tcp::socket& socket, asio::const_buffer data,
                               boost::system::error_code& ec) {
  const size_t sent = sendNow(socket, data, ec);
  if (ec || sent == data.size()) co_return;
  co_await asio::async_write(socket, data + sent, asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace sluice::net
