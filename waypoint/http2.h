// HTTP/2 over a ByteStream: the same sans-I/O nghttp2 Session the HBONE tunnels use
// (core/hbone/session.h), driven here over the bytes of one tunnel (or a plain socket) instead
// of over TLS. The waypoint serves downstream HTTP/2 and gRPC with a server session and
// multiplexes its upstream requests to an HTTP/2 app over a client session.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/h2/session.h"
#include "core/result.h"
#include "waypoint/http1.h"

namespace sluice::waypoint {

// What every HTTP/2 connection starts with from the client (RFC 9113 section 3.4).
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// The settings for the waypoint's HTTP/2 sessions: request heads bigger than a CONNECT's.
h2::SessionSettings http2Settings();

class Http2Connection : public std::enable_shared_from_this<Http2Connection> {
 public:
  // `received` holds bytes already read from `stream` (the preface the protocol was told by).
  static Result<std::shared_ptr<Http2Connection>> create(
      const boost::asio::any_io_executor& ex, h2::Role role, std::unique_ptr<ByteStream> stream,
      h2::Session::RequestHandler on_request = {}, std::string received = {});

  // Moves bytes until the connection ends (the peer closes, a protocol error, close()); then
  // every open stream is reset.
  boost::asio::awaitable<void> run();

  h2::Session& session() { return *session_; }
  // A client connection that can take another request now.
  bool usable() const { return !ended_ && session_->acceptsNewStreams(); }
  // GOAWAY: open streams finish, then the connection ends.
  void shutdown() { session_->shutdown(); }

  // For the upstream pool: requests started on it, and how long it may stay without an open
  // stream (session().idleSince()) before it is closed (0: for ever).
  uint32_t requests = 0;
  std::chrono::milliseconds idle_timeout{0};

  Http2Connection(const boost::asio::any_io_executor& ex, std::unique_ptr<ByteStream> stream,
                  std::unique_ptr<h2::Session> session, std::string received);

 private:
  boost::asio::awaitable<void> readLoop();
  boost::asio::awaitable<void> writeLoop();

  boost::asio::any_io_executor ex_;
  std::unique_ptr<ByteStream> stream_;
  std::unique_ptr<h2::Session> session_;
  std::string received_;
  std::string protocol_error_;
  std::string end_reason_;
  bool ended_ = false;
};

}  // namespace sluice::waypoint
