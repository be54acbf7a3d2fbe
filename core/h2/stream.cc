#include "core/h2/stream.h"

#include <algorithm>
#include <cstring>

namespace sluice::h2 {

namespace asio = boost::asio;

Stream::Stream(Session* session, const asio::any_io_executor& ex, size_t send_buffer)
    : session_(session), send_limit_(send_buffer), readable_(ex), writable_(ex), answered_(ex) {}

std::string Stream::header(std::string_view name) const {
  for (const auto& [key, value] : headers_)
    if (key == name) return value;
  return {};
}

asio::awaitable<int> Stream::response() {
  while (!response_ready_ && !closed_) co_await answered_.wait();
  co_return status_;
}

void Stream::respond(int status) {
  // 200 opens the tunnel; another status ends the stream with it (the client resets its half;
  // a RST queued here could overtake the HEADERS and lose the status).
  respond(status, {}, status == 200);
}

void Stream::respond(int status, const Headers& headers, bool body) {
  if (session_ == nullptr || closed_) return;
  status_ = status;
  session_->submitResponse(*this, status, headers, body);
}

asio::awaitable<size_t> Stream::read(asio::mutable_buffer buffer, boost::system::error_code& ec) {
  ec.clear();
  while (recv_.empty()) {
    if (recv_eof_) {
      ec = asio::error::eof;
      co_return 0;
    }
    if (reset_ || closed_) {
      ec = asio::error::connection_reset;
      co_return 0;
    }
    reader_waiting_ = true;
    struct Waited {
      bool& flag;
      ~Waited() { flag = false; }  // also when the wait is cancelled
    } waited{reader_waiting_};
    co_await readable_.wait();
  }
  auto* out = static_cast<uint8_t*>(buffer.data());
  size_t copied = 0;
  while (copied < buffer.size() && !recv_.empty()) {
    auto& chunk = recv_.front();
    const size_t n = std::min(buffer.size() - copied, chunk.size() - recv_front_offset_);
    std::memcpy(out + copied, chunk.data() + recv_front_offset_, n);
    copied += n;
    recv_front_offset_ += n;
    if (recv_front_offset_ == chunk.size()) {
      recv_.pop_front();
      recv_front_offset_ = 0;
    }
  }
  if (session_ != nullptr && !closed_) {
    nghttp2_session_consume(session_->h2_, id_, copied);
    session_->wantWrite();
  }
  co_return copied;
}

asio::awaitable<void> Stream::write(asio::const_buffer data, boost::system::error_code& ec) {
  ec.clear();
  const auto* bytes = static_cast<const uint8_t*>(data.data());
  size_t left = data.size();
  while (left > 0) {
    while (send_bytes_ >= send_limit_ && !reset_ && !closed_) co_await writable_.wait();
    if (reset_ || closed_ || session_ == nullptr || send_eof_) {
      ec = send_eof_ ? asio::error::shut_down : asio::error::connection_reset;
      co_return;
    }
    const size_t n = std::min(left, send_limit_ - send_bytes_);
    send_.emplace_back(bytes, bytes + n);
    send_bytes_ += n;
    bytes += n;
    left -= n;
    if (send_deferred_) {
      send_deferred_ = false;
      nghttp2_session_resume_data(session_->h2_, id_);
    }
    session_->wantWrite();
  }
}

void Stream::closeWrite(Headers trailers) {
  if (send_eof_) return;
  send_eof_ = true;
  send_trailers_ = std::move(trailers);
  if (session_ == nullptr || closed_) return;
  if (send_deferred_) {
    send_deferred_ = false;
    nghttp2_session_resume_data(session_->h2_, id_);
  }
  session_->wantWrite();
}

void Stream::reset(uint32_t h2_error) {
  if (closed_) return;
  if (session_ != nullptr) {
    nghttp2_submit_rst_stream(session_->h2_, NGHTTP2_FLAG_NONE, id_, h2_error);
    session_->wantWrite();
  }
  reset_ = true;
  if (reset_reason_.empty()) reset_reason_ = "reset locally";
  wake();
}

void Stream::onData(const uint8_t* data, size_t len) {
  // Only when nothing is queued, or the sink's bytes would overtake the queue's.
  if (sink_ && reader_waiting_ && recv_.empty() && session_ != nullptr) {
    const size_t taken = sink_(data, len);
    if (taken > 0) nghttp2_session_consume(session_->h2_, id_, taken);
    data += taken;
    len -= taken;
    if (len == 0) return;
  }
  recv_.emplace_back(data, data + len);
  readable_.notify();
}

void Stream::onEndStream() {
  recv_eof_ = true;
  readable_.notify();
}

void Stream::onResponseHeaders() {
  response_ready_ = true;
  answered_.notify();
}

void Stream::onClosed(uint32_t h2_error) {
  closed_ = true;
  close_code_ = h2_error;
  if (h2_error != NGHTTP2_NO_ERROR && !reset_) {
    reset_ = true;
    if (reset_reason_.empty())
      reset_reason_ = std::string("stream reset by peer: ") + nghttp2_http2_strerror(h2_error);
  }
  // A stream that closes cleanly before END_STREAM arrived (e.g. refused) reads as reset.
  if (!recv_eof_ && !reset_) reset_ = true;
  wake();
}

void Stream::wake() {
  readable_.notify();
  writable_.notify();
  answered_.notify();
}

size_t Stream::takeSendBytes(uint8_t* out, size_t max, bool& eof) {
  size_t copied = 0;
  while (copied < max && !send_.empty()) {
    auto& chunk = send_.front();
    const size_t n = std::min(max - copied, chunk.size() - send_front_offset_);
    std::memcpy(out + copied, chunk.data() + send_front_offset_, n);
    copied += n;
    send_front_offset_ += n;
    if (send_front_offset_ == chunk.size()) {
      send_.pop_front();
      send_front_offset_ = 0;
    }
  }
  send_bytes_ -= copied;
  if (copied > 0) writable_.notify();
  eof = send_eof_ && send_.empty();
  return copied;
}

}  // namespace sluice::h2
