// Stream: one HTTP/2 stream seen as a byte stream: an HBONE tunnel (a CONNECT stream), or one
// request and its response for the waypoint's HTTP/2 (heads and trailers beside the bytes).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/h2/session.h"
#include "core/net/signal.h"

namespace sluice::h2 {

// Flow control is end to end: received bytes are acknowledged to the peer (WINDOW_UPDATE) only
// when read(), and write() waits while the stream's send buffer is full, so a slow reader on
// either side slows the writer on the other instead of growing memory.
class Stream : public std::enable_shared_from_this<Stream> {
 public:
  Stream(Session* session, const boost::asio::any_io_executor& ex, size_t send_buffer);

  int32_t id() const { return id_; }
  // Server: the request's :authority; client: what was asked for.
  const std::string& authority() const { return authority_; }
  // Server: request headers; client: the final response's headers (lower-case names, the
  // pseudo-headers first).
  const Headers& headers() const { return headers_; }
  std::string header(std::string_view name) const;
  // The header block that followed the body (gRPC's grpc-status); complete once read() saw eof.
  const Headers& trailers() const { return trailers_; }

  // Client: waits for the response. 200 opens the tunnel; anything else fails with the status.
  boost::asio::awaitable<int> response();

  // Server: answers the CONNECT. 200 opens the tunnel; another status ends the stream.
  void respond(int status);
  // Server: a response head (`headers` without :status); `body` false ends the stream with it.
  void respond(int status, const Headers& headers, bool body);

  // Reads up to buffer's size; returns 0 with ec = eof after the peer's END_STREAM, or
  // connection_reset when the stream was reset.
  boost::asio::awaitable<size_t> read(boost::asio::mutable_buffer buffer,
                                      boost::system::error_code& ec);
  // Queues all of `data`, waiting while the send buffer is full.
  boost::asio::awaitable<void> write(boost::asio::const_buffer data, boost::system::error_code& ec);
  // Half-close: END_STREAM after the queued bytes, on a trailer block when `trailers` has any.
  void closeWrite(Headers trailers = {});
  // RST_STREAM (CANCEL unless told otherwise); both directions end.
  void reset(uint32_t h2_error = NGHTTP2_CANCEL);

  // Direct delivery: while the reader waits in read() with nothing queued, arriving bytes are
  // first offered to `sink` (called inside the session's receive); what it takes counts as read,
  // so the window reopens as usual, and the rest queues for read(). This saves the reader's
  // scheduling hop per message. The sink must not block or call into the session; an empty
  // function removes it.
  using Sink = std::function<size_t(const uint8_t* data, size_t size)>;
  void setSink(Sink sink) { sink_ = std::move(sink); }

  bool wasReset() const { return reset_; }
  // The peer's END_STREAM arrived (bytes before it may still be unread): it sends no more.
  bool peerEnded() const { return recv_eof_; }
  // The peer's END_STREAM arrived and every byte before it was read.
  bool finishedReading() const { return recv_eof_ && recv_.empty(); }
  const std::string& resetReason() const { return reset_reason_; }
  // The HTTP/2 error code the stream closed with (NGHTTP2_REFUSED_STREAM: never processed).
  uint32_t closeCode() const { return close_code_; }
  int status() const { return status_; }

 private:
  friend class Session;

  void attach(int32_t id) { id_ = id; }
  void detachSession() { session_ = nullptr; }
  void onData(const uint8_t* data, size_t len);
  void onEndStream();
  void onClosed(uint32_t h2_error);
  void onResponseHeaders();
  size_t takeSendBytes(uint8_t* out, size_t max, bool& eof);
  void wake();

  Session* session_;
  int32_t id_ = -1;
  std::string authority_;
  Headers headers_;
  Headers trailers_;
  Headers send_trailers_;
  bool head_received_ = false;  // the (final) head is complete: a further block is trailers
  int status_ = 0;
  bool response_ready_ = false;

  std::deque<std::vector<uint8_t>> recv_;
  size_t recv_front_offset_ = 0;
  bool recv_eof_ = false;
  bool reader_waiting_ = false;  // read() waits for bytes: the sink may take them
  Sink sink_;

  std::deque<std::vector<uint8_t>> send_;
  size_t send_front_offset_ = 0;
  size_t send_bytes_ = 0;
  size_t send_limit_;
  bool send_eof_ = false;      // closeWrite() called
  bool send_started_ = false;  // a data provider is attached (tunnel open)
  bool send_deferred_ = false;

  bool reset_ = false;
  bool closed_ = false;
  std::string reset_reason_;
  uint32_t close_code_ = 0;

  net::Signal readable_;
  net::Signal writable_;
  net::Signal answered_;
};

}  // namespace sluice::h2
