// HTTP/2 sessions over byte streams (see http2.h).
#include "waypoint/http2.h"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "core/net/signal.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

constexpr size_t kWriteBatch = 256 * 1024;

}  // namespace

h2::SessionSettings http2Settings() {
  h2::SessionSettings settings;
  // Browsers and gRPC send heads of a few KiB; Envoy's default limit is 60 KiB and 100 fields.
  settings.max_header_list = 64u << 10;
  settings.max_headers = 100;
  // A request stream's window: 1 MiB, so one upload cannot take the whole 16 MiB connection
  // window from the other streams.
  settings.stream_window = 1u << 20;
  settings.max_frame = 1u << 14;  // the default: small frames keep streams interleaved
  return settings;
}

Result<std::shared_ptr<Http2Connection>> Http2Connection::create(
    const asio::any_io_executor& ex, h2::Role role, std::unique_ptr<ByteStream> stream,
    h2::Session::RequestHandler on_request, std::string received) {
  auto session = h2::Session::create(ex, role, http2Settings(), std::move(on_request));
  if (!session) return session.error();
  return std::make_shared<Http2Connection>(ex, std::move(stream), std::move(*session),
                                           std::move(received));
}

Http2Connection::Http2Connection(const asio::any_io_executor& ex,
                                 std::unique_ptr<ByteStream> stream,
                                 std::unique_ptr<h2::Session> session, std::string received)
    : ex_(ex),
      stream_(std::move(stream)),
      session_(std::move(session)),
      received_(std::move(received)) {}

asio::awaitable<void> Http2Connection::run() {
  auto self = shared_from_this();
  // The write loop goes first so our SETTINGS leave before the peer's bytes are parsed.
  co_await (writeLoop() || readLoop());
  ended_ = true;
  if (end_reason_.empty()) end_reason_ = "HTTP/2 connection ended";
  session_->fail(end_reason_);
  if (protocol_error_.empty())
    stream_->closeWrite();
  else
    stream_->abort();
}

asio::awaitable<void> Http2Connection::readLoop() {
  std::vector<uint8_t> buffer(kFirstReadChunk);
  std::string first = std::move(received_);
  if (!first.empty()) {
    if (auto ok = session_->receive({reinterpret_cast<const uint8_t*>(first.data()), first.size()});
        !ok) {
      protocol_error_ = ok.message();
    }
  }
  while (protocol_error_.empty()) {
    error_code ec;
    const size_t n = co_await stream_->read(asio::buffer(buffer), ec);
    if (ec) {
      end_reason_ = ec == asio::error::eof ? "peer closed the HTTP/2 connection"
                                           : "HTTP/2 connection read failed: " + ec.message();
      if (session_->activeStreams() == 0 || session_->failed()) co_return;
      // The peer's half is done; answers still being written may finish, unless they need
      // something from the peer.
      session_->shutdown();
      session_->resetStreamsThePeerCannotFinish(end_reason_);
      break;
    }
    if (auto ok = session_->receive({buffer.data(), n}); !ok) protocol_error_ = ok.message();
    if (n == buffer.size() && buffer.size() < kBulkReadChunk) buffer.resize(kBulkReadChunk);
  }
  if (!protocol_error_.empty()) {
    // Stop reading; the GOAWAY nghttp2 queued still goes out.
    end_reason_ = protocol_error_;
    session_->outputReady().notify();
  }
  // The write loop ends the connection: after the GOAWAY, or after the last answer.
  net::Signal never(ex_);
  for (;;) co_await never.wait();
}

asio::awaitable<void> Http2Connection::writeLoop() {
  std::string out;
  for (;;) {
    out.clear();
    while (session_->produce(out, kWriteBatch)) {
      error_code ec;
      co_await stream_->write(asio::buffer(out), ec);
      if (ec) {
        if (end_reason_.empty()) end_reason_ = "HTTP/2 connection write failed: " + ec.message();
        co_return;
      }
      out.clear();
    }
    if (!protocol_error_.empty() || session_->failed() || !session_->alive()) co_return;
    // The peer finished writing: end once our answers are out. An answer that has run out of
    // flow-control window since can never go on.
    if (!end_reason_.empty()) {
      if (session_->activeStreams() == 0) co_return;
      session_->resetStreamsThePeerCannotFinish(end_reason_);  // their RST_STREAMs wake us
    }
    co_await session_->outputReady().wait();
  }
}

}  // namespace sluice::waypoint
