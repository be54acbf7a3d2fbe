// Session: one HTTP/2 connection's protocol state (nghttp2), without I/O.
//
// The session turns bytes from the peer into stream events and stream writes into bytes for the
// peer; Connection (connection.h) moves those bytes over TLS. Keeping the protocol free of I/O
// lets the fuzzer and unit tests drive it with plain buffers. Single-threaded: a session and its
// streams live on one executor.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/net/signal.h"
#include "core/result.h"

namespace sluice::h2 {

class Stream;

using Headers = std::vector<std::pair<std::string, std::string>>;

enum class Role { kClient, kServer };

struct SessionSettings {
  uint32_t stream_window = 4u << 20;       // per-stream receive window (DESIGN: 4 MiB)
  uint32_t connection_window = 16u << 20;  // per-connection receive window (DESIGN: 16 MiB)
  uint32_t max_concurrent_streams = 100;   // advertised to the peer
  size_t stream_send_buffer = 256u << 10;  // bytes a writer may queue on a stream before waiting
  uint32_t max_header_list = 16u << 10;    // a CONNECT needs little; more is hostile
  size_t max_headers = 64;                 // fields per header block; more resets the stream
  uint32_t max_frame = 1u << 18;           // DATA frames we accept and send (peer permitting)
};

class Session {
 public:
  // Server: called once per complete request head (a CONNECT for HBONE, any request for the
  // waypoint's HTTP/2), with a stream ready for respond().
  using RequestHandler = std::function<void(std::shared_ptr<Stream>)>;

  static Result<std::unique_ptr<Session>> create(const boost::asio::any_io_executor& ex, Role role,
                                                 SessionSettings settings,
                                                 RequestHandler on_request = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes from the peer. An error is a connection-level protocol error: stop reading, flush
  // what produce() still yields (a GOAWAY), then close.
  Result<void> receive(std::span<const uint8_t> bytes);

  // Appends frames to send to `out`, up to about `max` bytes; false when nothing is pending.
  bool produce(std::string& out, size_t max);

  // True while the connection has work: streams open or frames to exchange.
  bool alive() const;

  // Client: opens a CONNECT stream to `authority`; the response arrives on the stream.
  Result<std::shared_ptr<Stream>> connect(const std::string& authority, const Headers& headers);
  // Client: opens a request stream. `headers` starts with the pseudo-headers (:method, :scheme,
  // :authority, :path); `body` false ends the stream with the head (END_STREAM on HEADERS).
  Result<std::shared_ptr<Stream>> request(const Headers& headers, bool body);

  // Streams open now, and whether another may be opened (no GOAWAY, under the peer's limit).
  size_t activeStreams() const { return streams_.size(); }
  bool acceptsNewStreams() const;
  size_t streamLimit() const;
  std::chrono::steady_clock::time_point idleSince() const { return idle_since_; }

  // Sends GOAWAY: no new streams; open ones finish.
  void shutdown();
  // The peer's side of the transport ended, so it can send nothing more: resets (CANCEL) the
  // streams that still need its bytes (the rest of a header block or body, or a WINDOW_UPDATE
  // before another byte may go). The others may still finish.
  void resetStreamsThePeerCannotFinish(const std::string& reason);
  // The transport broke: every open stream is reset with `reason`.
  void fail(const std::string& reason);
  bool failed() const { return failed_; }

  // Notified whenever produce() may have more to send and the flusher (if any) did not send it.
  net::Signal& outputReady() { return output_ready_; }

  // Called, outside nghttp2's callbacks, as soon as there may be output: it sends what produce()
  // yields right away and returns true, or returns false to leave it to whoever waits on
  // outputReady(). Connection installs one so that a stream write leaves in the writer's call
  // instead of one scheduling hop later.
  using Flusher = std::function<bool()>;
  void setFlusher(Flusher flusher) { flusher_ = std::move(flusher); }

 private:
  friend class Stream;
  Session(const boost::asio::any_io_executor& ex, Role role, SessionSettings settings,
          RequestHandler on_request);

  void wantWrite() {
    if (in_nghttp2_ == 0 && flusher_ && flusher_()) return;
    output_ready_.notify();
  }
  void detach(int32_t stream_id);
  void submitResponse(Stream& stream, int status, const Headers& headers, bool body);

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int onStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t onReadData(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                            nghttp2_data_source*, void*);
  static int onSendData(nghttp2_session*, nghttp2_frame*, const uint8_t*, size_t,
                        nghttp2_data_source*, void*);
  static ssize_t onDataLength(nghttp2_session*, uint8_t, int32_t, int32_t, int32_t, uint32_t,
                              void*);

  boost::asio::any_io_executor ex_;
  Role role_;
  SessionSettings settings_;
  RequestHandler on_request_;
  nghttp2_session* h2_ = nullptr;
  std::map<int32_t, std::shared_ptr<Stream>> streams_;
  net::Signal output_ready_;
  Flusher flusher_;
  int in_nghttp2_ = 0;  // inside nghttp2_session_mem_recv/mem_send, which must not be re-entered
  std::string* producing_ = nullptr;  // produce()'s output, where DATA payloads go uncopied
  bool goaway_ = false;
  bool failed_ = false;
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
};

}  // namespace sluice::h2
