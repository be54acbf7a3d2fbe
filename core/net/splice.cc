#include "core/net/splice.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/net/sockets.h"

namespace sluice::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

void abortSocket(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

asio::awaitable<SpliceResult> splice(tcp::socket& local, tcp::socket& remote, ByteCounter count) {
  SpliceResult result;
  auto pump = [&](tcp::socket& from, tcp::socket& to, bool outward) -> asio::awaitable<void> {
    auto buffer = spliceBuffer();
    for (;;) {
      boost::system::error_code ec;
      const size_t n = co_await from.async_read_some(asio::buffer(buffer.get(), kSpliceChunk),
                                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::eof) {
        boost::system::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (!ec) co_await writeAll(to, asio::buffer(buffer.get(), n), ec);
      if (ec) {
        if (result.error.empty() && ec != asio::error::operation_aborted &&
            ec != asio::error::bad_descriptor)
          result.error =
              (outward ? "local" : "remote") + std::string(" connection failed: ") + ec.message();
        abortSocket(from);
        abortSocket(to);
        co_return;
      }
      (outward ? result.to_peer : result.from_peer) += n;
      if (count) outward ? count(n, 0) : count(0, n);
    }
  };
  co_await (pump(local, remote, true) && pump(remote, local, false));
  co_return result;
}

}  // namespace sluice::net
