// The two halves of one proxied request, each behind an interface so the proxy's policy code
// (routes, retries, timeouts, faults) is written once for every protocol pairing:
// - DownstreamRequest: the request as the client sent it and the way back to the client, over
//   HTTP/1.1 (one request at a time on a connection) or HTTP/2 (one stream of a session).
// - UpstreamCall: one attempt at an endpoint, over HTTP/1.1 (a pooled keep-alive tunnel) or
//   HTTP/2 (a stream of a session multiplexed over one tunnel).
// Header lists carry the authority as `host` whatever the protocol; the HTTP/2 sides turn it
// into `:authority` and back.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "waypoint/http1.h"
#include "waypoint/http2.h"

namespace sluice::h2 {
class Stream;
}

namespace sluice::waypoint {

// Bodies move in pieces of at most this many bytes.
constexpr size_t kBodyChunk = 64 * 1024;

// A kBodyChunk buffer for a body loop, taken from a small per-thread stock and given back when
// it goes. A fresh zeroed one per response showed in the worker's profile (memset 2.8% of its
// samples, and glibc consolidating its fast bins on each 64 KiB free).
class BodyBuffer {
 public:
  BodyBuffer();
  ~BodyBuffer();
  BodyBuffer(const BodyBuffer&) = delete;
  BodyBuffer& operator=(const BodyBuffer&) = delete;
  char* data() { return bytes_.get(); }
  static constexpr size_t size() { return kBodyChunk; }

 private:
  std::unique_ptr<char[]> bytes_;
};

// What follows a head.
struct BodySize {
  bool none = false;               // no body at all (HEAD, 204, 304, END_STREAM on the head)
  std::optional<uint64_t> length;  // when announced (a HEAD answer keeps its content-length)
};

struct RequestHead {
  std::string method, target;
  HeaderList headers;  // forwardable fields only
  BodySize body;
  int version = 11;        // 10, 11 or 20
  bool keep_alive = true;  // HTTP/1.x: the client wants the connection kept
  bool trailers = false;   // `te: trailers`: the client reads trailers (gRPC)
  std::string upgrade;     // HTTP/1.1 `Upgrade` asked for (websocket): passed through
};

class DownstreamRequest {
 public:
  virtual ~DownstreamRequest() = default;
  const RequestHead& head() const { return head_; }
  bool http2() const { return head_.version == 20; }

  // Request body bytes into [out, out + capacity); 0 once the body is complete.
  virtual boost::asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) = 0;
  virtual bool bodyDone() const = 0;
  virtual HeaderList trailers() const { return {}; }
  // "100 Continue" for a client that waits for it before sending its body.
  virtual boost::asio::awaitable<void> sendContinue(error_code& ec) = 0;

  // The response: a head, its body in pieces (`last` on the final one lets HTTP/1.1 send it
  // together with the end of the message), then the end, with trailers if any.
  virtual boost::asio::awaitable<void> sendHead(int status, std::string_view reason,
                                                const HeaderList& headers, BodySize body,
                                                error_code& ec) = 0;
  virtual boost::asio::awaitable<void> sendData(std::string_view data, bool last,
                                                error_code& ec) = 0;
  virtual boost::asio::awaitable<void> endResponse(const HeaderList& trailers, error_code& ec) = 0;
  // Abandons the response: the client sees a reset, never a truncated body taken as whole.
  virtual void abort() = 0;
  // After the response: whether the connection carries another request (HTTP/1.1).
  virtual bool reusable() const = 0;
  // HTTP/1.1 upgrade: the connection's bytes, and those already read past the request head.
  virtual ByteStream* rawStream() { return nullptr; }
  virtual boost::beast::flat_buffer* rawBuffered() { return nullptr; }

 protected:
  RequestHead head_;
};

// `reader` has read the head already.
std::unique_ptr<DownstreamRequest> http1Request(ByteStream& stream, RequestReader& reader);
std::unique_ptr<DownstreamRequest> http2Request(std::shared_ptr<h2::Stream> stream);

// An HTTP/1.1 tunnel to one endpoint, kept between requests for reuse.
struct Http1Connection {
  std::unique_ptr<ByteStream> stream;  // an HBONE stream, or a socket to an app outside the mesh
  boost::beast::flat_buffer in;
  boost::asio::ip::tcp::endpoint address;
  uint32_t requests = 0;  // answered on it so far
  std::chrono::steady_clock::time_point idle_until = std::chrono::steady_clock::time_point::max();

  // The app (or its ztunnel) ended the connection, as a keep-alive timeout does while it idles
  // in the pool: it can carry no further request.
  bool closedByPeer() const { return stream->closedByPeer(); }
};

struct UpstreamRequest {
  std::string method, target;
  HeaderList headers;  // with `host`
  BodySize body;
  bool trailers = false;  // forward `te: trailers`
  std::string upgrade;
};

class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  // Sends the head and `body`: the whole body when `complete`, else its first part.
  virtual boost::asio::awaitable<void> start(const UpstreamRequest& request, std::string_view body,
                                             bool complete, error_code& ec) = 0;
  virtual boost::asio::awaitable<void> sendBody(std::string_view data, error_code& ec) = 0;
  // The end of the body, on `trailers` when there are any (HTTP/1.1: only a chunked body has
  // room for them).
  virtual boost::asio::awaitable<void> endBody(const HeaderList& trailers, error_code& ec) = 0;
  // Waits for the final response head (interim 1xx answers are skipped), then fills the fields
  // below.
  virtual boost::asio::awaitable<error_code> readHead() = 0;
  virtual boost::asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) = 0;
  virtual bool bodyDone() const = 0;
  virtual HeaderList trailers() const { return {}; }
  // Abandons the attempt (also from a timer: the pending read then fails).
  virtual void abort() = 0;
  // The attempt failed before the app could have seen the request (a pooled connection the app
  // had closed, a refused stream): sending it again on a new connection is safe and is not a
  // retry.
  virtual bool neverSent(error_code ec) const = 0;
  // HTTP/1.1: the connection, when it may carry the next request.
  virtual std::unique_ptr<Http1Connection> reusableConnection() { return nullptr; }
  virtual ByteStream* rawStream() { return nullptr; }
  virtual boost::beast::flat_buffer* rawBuffered() { return nullptr; }

  int status = 0;
  std::string reason;
  HeaderList headers;  // forwardable fields only
  BodySize body;
  std::optional<int> grpc_status;  // from the head (a trailers-only gRPC answer)
  std::string error;               // why readHead failed, when the stream says more than ec
};

// The gRPC status a client should see for an HTTP status the waypoint answers with itself
// (gRPC's HTTP to gRPC status mapping: 503 and 504 are UNAVAILABLE, 403 PERMISSION_DENIED...).
int grpcStatusForHttp(int http_status);
// `text` as a grpc-message value: its first line, percent-encoded where the gRPC spec asks.
std::string grpcMessage(std::string_view text);

std::unique_ptr<UpstreamCall> http1Call(std::unique_ptr<Http1Connection> connection, bool reused);
std::unique_ptr<UpstreamCall> http2Call(std::shared_ptr<Http2Connection> connection);

}  // namespace sluice::waypoint
