#include "core/hbone/splice.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/h2/stream.h"
#include "core/net/sockets.h"

namespace sluice::hbone {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<net::SpliceResult> splice(tcp::socket& local, h2::Stream& tunnel,
                                          net::ByteCounter count) {
  net::SpliceResult result;
  auto upstream = [&]() -> asio::awaitable<void> {
    auto buffer = net::spliceBuffer();
    for (;;) {
      boost::system::error_code ec;
      const size_t n =
          co_await local.async_read_some(asio::buffer(buffer.get(), net::kSpliceChunk),
                                         asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::eof) {
        tunnel.closeWrite();
        co_return;
      }
      if (ec) {
        if (!tunnel.wasReset()) {
          if (result.error.empty()) result.error = "local connection failed: " + ec.message();
          tunnel.reset();
        }
        co_return;
      }
      co_await tunnel.write(asio::buffer(buffer.get(), n), ec);
      if (ec) {
        if (result.error.empty()) result.error = tunnel.resetReason();
        net::abortSocket(local);
        co_return;
      }
      result.to_peer += n;
      if (count) count(n, 0);
    }
  };
  auto downstream = [&]() -> asio::awaitable<void> {
    auto buffer = net::spliceBuffer();
    // While this loop waits for the tunnel, arriving bytes go straight to the local socket as far
    // as it takes them at once: one scheduling hop less per message. A failed send takes nothing;
    // the loop below then meets the error itself.
    tunnel.setSink([&](const uint8_t* data, size_t size) -> size_t {
      boost::system::error_code ignored;
      const size_t sent = net::sendNow(local, asio::buffer(data, size), ignored);
      result.from_peer += sent;
      if (count && sent > 0) count(0, sent);
      return sent;
    });
    struct SinkGuard {
      h2::Stream& tunnel;
      ~SinkGuard() { tunnel.setSink({}); }  // the sink refers to this frame
    } guard{tunnel};
    for (;;) {
      boost::system::error_code ec;
      const size_t n = co_await tunnel.read(asio::buffer(buffer.get(), net::kSpliceChunk), ec);
      if (ec == asio::error::eof) {
        boost::system::error_code ignored;
        local.shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (ec) {
        if (result.error.empty()) result.error = tunnel.resetReason();
        net::abortSocket(local);
        co_return;
      }
      co_await net::writeAll(local, asio::buffer(buffer.get(), n), ec);
      if (ec) {
        if (result.error.empty()) result.error = "local connection failed: " + ec.message();
        tunnel.reset();
        co_return;
      }
      result.from_peer += n;
      if (count) count(0, n);
    }
  };
  co_await (upstream() && downstream());
  co_return result;
}

}  // namespace sluice::hbone
