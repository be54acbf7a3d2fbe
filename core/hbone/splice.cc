#include "core/hbone/splice.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

#include "core/hbone/sockets.h"
#include "core/hbone/stream.h"

namespace sluice::hbone {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr size_t kChunk = 64 * 1024;

// Not zero-filled: an idle or chatty connection touches only the pages its bytes land in,
// which keeps RSS per open stream low (a zeroed 64 KiB buffer costs 64 KiB at once).
std::unique_ptr<uint8_t[]> chunkBuffer() {
  return std::make_unique_for_overwrite<uint8_t[]>(kChunk);
}

}  // namespace

void abortSocket(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

asio::awaitable<SpliceResult> splice(tcp::socket& local, Stream& tunnel, ByteCounter count) {
  SpliceResult result;
  auto upstream = [&]() -> asio::awaitable<void> {
    auto buffer = chunkBuffer();
    for (;;) {
      boost::system::error_code ec;
      const size_t n = co_await local.async_read_some(
          asio::buffer(buffer.get(), kChunk), asio::redirect_error(asio::use_awaitable, ec));
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
        abortSocket(local);
        co_return;
      }
      result.to_peer += n;
      if (count) count(n, 0);
    }
  };
  auto downstream = [&]() -> asio::awaitable<void> {
    auto buffer = chunkBuffer();
    // While this loop waits for the tunnel, arriving bytes go straight to the local socket as far
    // as it takes them at once: one scheduling hop less per message. A failed send takes nothing;
    // the loop below then meets the error itself.
    tunnel.setSink([&](const uint8_t* data, size_t size) -> size_t {
      boost::system::error_code ignored;
      const size_t sent = sendNow(local, asio::buffer(data, size), ignored);
      result.from_peer += sent;
      if (count && sent > 0) count(0, sent);
      return sent;
    });
    struct SinkGuard {
      Stream& tunnel;
      ~SinkGuard() { tunnel.setSink({}); }  // the sink refers to this frame
    } guard{tunnel};
    for (;;) {
      boost::system::error_code ec;
      const size_t n = co_await tunnel.read(asio::buffer(buffer.get(), kChunk), ec);
      if (ec == asio::error::eof) {
        boost::system::error_code ignored;
        local.shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (ec) {
        if (result.error.empty()) result.error = tunnel.resetReason();
        abortSocket(local);
        co_return;
      }
      co_await writeAll(local, asio::buffer(buffer.get(), n), ec);
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

asio::awaitable<SpliceResult> splice(tcp::socket& local, tcp::socket& remote, ByteCounter count) {
  SpliceResult result;
  auto pump = [&](tcp::socket& from, tcp::socket& to, bool outward) -> asio::awaitable<void> {
    auto buffer = chunkBuffer();
    for (;;) {
      boost::system::error_code ec;
      const size_t n = co_await from.async_read_some(asio::buffer(buffer.get(), kChunk),
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

}  // namespace sluice::hbone
