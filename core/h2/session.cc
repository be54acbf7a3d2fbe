#include "core/h2/session.h"

#include <algorithm>
#include <cstring>

#include "core/h2/stream.h"

namespace sluice::h2 {

namespace {

struct OptionDeleter {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};

nghttp2_nv makeNv(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

Stream* streamOf(nghttp2_session* h2, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(h2, id));
}

}  // namespace

Session::Session(const boost::asio::any_io_executor& ex, Role role, SessionSettings settings,
                 RequestHandler on_request)
    : ex_(ex),
      role_(role),
      settings_(settings),
      on_request_(std::move(on_request)),
      output_ready_(ex) {}

Result<std::unique_ptr<Session>> Session::create(const boost::asio::any_io_executor& ex, Role role,
                                                 SessionSettings settings,
                                                 RequestHandler on_request) {
  std::unique_ptr<Session> session(new Session(ex, role, settings, std::move(on_request)));

  nghttp2_session_callbacks* raw_callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&raw_callbacks) != 0)
    return makeError("nghttp2: out of memory");
  std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> callbacks(raw_callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(raw_callbacks, &Session::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(raw_callbacks, &Session::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw_callbacks, &Session::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_callbacks, &Session::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw_callbacks, &Session::onStreamClose);
  nghttp2_session_callbacks_set_send_data_callback(raw_callbacks, &Session::onSendData);
  nghttp2_session_callbacks_set_data_source_read_length_callback(raw_callbacks,
                                                                 &Session::onDataLength);

  nghttp2_option* raw_option = nullptr;
  if (nghttp2_option_new(&raw_option) != 0) return makeError("nghttp2: out of memory");
  std::unique_ptr<nghttp2_option, OptionDeleter> option(raw_option);
  // Window updates follow what the application has read, not what arrived: back-pressure.
  nghttp2_option_set_no_auto_window_update(raw_option, 1);
  nghttp2_option_set_max_send_header_block_length(raw_option, settings.max_header_list);
  nghttp2_option_set_max_settings(raw_option, 32);

  const int rv =
      role == Role::kClient
          ? nghttp2_session_client_new2(&session->h2_, raw_callbacks, session.get(), raw_option)
          : nghttp2_session_server_new2(&session->h2_, raw_callbacks, session.get(), raw_option);
  if (rv != 0) return makeError(std::string("nghttp2 session: ") + nghttp2_strerror(rv));

  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings.max_frame},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  const size_t count = role == Role::kClient ? std::size(entries) : std::size(entries) - 1;
  if (int err = nghttp2_submit_settings(session->h2_, NGHTTP2_FLAG_NONE, entries, count); err != 0)
    return makeError(std::string("nghttp2 settings: ") + nghttp2_strerror(err));
  const int32_t default_window = NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
  if (settings.connection_window > static_cast<uint32_t>(default_window)) {
    nghttp2_submit_window_update(session->h2_, NGHTTP2_FLAG_NONE, 0,
                                 static_cast<int32_t>(settings.connection_window) - default_window);
  }
  return session;
}

Session::~Session() {
  for (auto& [id, stream] : streams_) {
    stream->onClosed(NGHTTP2_CANCEL);
    stream->detachSession();
  }
  streams_.clear();
  nghttp2_session_del(h2_);
}

Result<void> Session::receive(std::span<const uint8_t> bytes) {
  ++in_nghttp2_;
  const ssize_t rv = nghttp2_session_mem_recv(h2_, bytes.data(), bytes.size());
  --in_nghttp2_;
  wantWrite();
  if (rv < 0) return makeError(std::string("HTTP/2 protocol error: ") + nghttp2_strerror(rv));
  return success();
}

bool Session::produce(std::string& out, size_t max) {
  // The common case after a read: nothing to answer. Cheaper to ask than to try.
  if (nghttp2_session_want_write(h2_) == 0) return false;
  const size_t start = out.size();
  producing_ = &out;
  ++in_nghttp2_;
  while (out.size() - start < max) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(h2_, &data);
    if (n <= 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  --in_nghttp2_;
  producing_ = nullptr;
  return out.size() > start;
}

bool Session::alive() const {
  return !failed_ && (nghttp2_session_want_read(h2_) || nghttp2_session_want_write(h2_));
}

size_t Session::streamLimit() const {
  const uint32_t remote =
      nghttp2_session_get_remote_settings(h2_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return role_ == Role::kClient ? std::min<size_t>(remote, settings_.max_concurrent_streams)
                                : remote;
}

bool Session::acceptsNewStreams() const {
  return !goaway_ && !failed_ && activeStreams() < streamLimit() &&
         nghttp2_session_check_request_allowed(h2_) != 0;
}

Result<std::shared_ptr<Stream>> Session::connect(const std::string& authority,
                                                 const Headers& headers) {
  static const std::string kMethod = ":method", kConnect = "CONNECT", kAuthority = ":authority";
  Headers request;
  request.reserve(headers.size() + 2);
  request.emplace_back(kMethod, kConnect);
  request.emplace_back(kAuthority, authority);
  request.insert(request.end(), headers.begin(), headers.end());
  return this->request(request, true);
}

Result<std::shared_ptr<Stream>> Session::request(const Headers& headers, bool body) {
  if (role_ != Role::kClient) return makeError("only a client session opens streams");
  if (!acceptsNewStreams()) return makeError("connection accepts no new streams");
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const auto& [name, value] : headers) nva.push_back(makeNv(name, value));

  auto stream = std::make_shared<Stream>(this, ex_, settings_.stream_send_buffer);
  for (const auto& [name, value] : headers)
    if (name == ":authority") stream->authority_ = value;
  nghttp2_data_provider provider{};
  provider.source.ptr = stream.get();
  provider.read_callback = &Session::onReadData;
  const int32_t id = nghttp2_submit_request(h2_, nullptr, nva.data(), nva.size(),
                                            body ? &provider : nullptr, stream.get());
  if (id < 0) return makeError(std::string("HTTP/2 request: ") + nghttp2_strerror(id));
  stream->attach(id);
  stream->send_started_ = body;
  stream->send_eof_ = !body;
  streams_.emplace(id, stream);
  wantWrite();
  return stream;
}

void Session::submitResponse(Stream& stream, int status, const Headers& headers, bool body) {
  const std::string code = std::to_string(status);
  static const std::string kStatus = ":status";
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 1);
  nva.push_back(makeNv(kStatus, code));
  for (const auto& [name, value] : headers) nva.push_back(makeNv(name, value));
  nghttp2_data_provider provider{};
  provider.source.ptr = &stream;
  provider.read_callback = &Session::onReadData;
  nghttp2_submit_response(h2_, stream.id_, nva.data(), nva.size(), body ? &provider : nullptr);
  stream.send_started_ = body;
  if (!body) stream.send_eof_ = true;
  wantWrite();
}

void Session::shutdown() {
  if (goaway_) return;
  goaway_ = true;
  // A graceful GOAWAY: streams up to the last one processed carry on (terminate_session would
  // close them all).
  nghttp2_submit_goaway(h2_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  wantWrite();
}

void Session::resetStreamsThePeerCannotFinish(const std::string& reason) {
  const bool connection_window_shut = nghttp2_session_get_remote_window_size(h2_) <= 0;
  std::vector<std::shared_ptr<Stream>> stuck;
  for (const auto& [id, stream] : streams_) {
    if (stream->wasReset()) continue;
    if (nghttp2_session_get_stream_remote_close(h2_, id) == 0 || connection_window_shut ||
        nghttp2_session_get_stream_remote_window_size(h2_, id) <= 0)
      stuck.push_back(stream);
  }
  for (const auto& stream : stuck) {
    if (stream->reset_reason_.empty()) stream->reset_reason_ = reason;
    stream->reset();
  }
}

void Session::fail(const std::string& reason) {
  if (failed_) return;
  failed_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) {
    stream->reset_reason_ = reason;
    stream->onClosed(NGHTTP2_CANCEL);
    stream->detachSession();
  }
  idle_since_ = std::chrono::steady_clock::now();
  wantWrite();
}

void Session::detach(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second->detachSession();
  streams_.erase(it);
  if (streams_.empty()) idle_since_ = std::chrono::steady_clock::now();
}

int Session::onBeginHeaders(nghttp2_session* h2, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Session*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (self->role_ == Role::kServer && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto stream = std::make_shared<Stream>(self, self->ex_, self->settings_.stream_send_buffer);
    stream->attach(frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, stream.get());
    self->streams_.emplace(frame->hd.stream_id, std::move(stream));
    return 0;
  }
  // A client's next head replaces an interim (1xx) one; after the final head, a block is
  // trailers.
  Stream* stream = streamOf(h2, frame->hd.stream_id);
  if (stream != nullptr && !stream->head_received_) stream->headers_.clear();
  return 0;
}

int Session::onHeader(nghttp2_session* h2, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* self = static_cast<Session*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* stream = streamOf(h2, frame->hd.stream_id);
  if (stream == nullptr) return 0;
  Headers& block = stream->head_received_ ? stream->trailers_ : stream->headers_;
  // Too many fields: the stream is reset rather than forwarded with some silently missing.
  if (block.size() >= self->settings_.max_headers) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  // Over the SETTINGS_MAX_HEADER_LIST_SIZE we advertise, counted decoded as RFC 9113 counts it
  // (name + value + 32 per field): nghttp2 does not enforce it, and HPACK lets a few bytes on the
  // wire (an indexed field, repeated) decode to megabytes. The stream is reset.
  size_t list_size = namelen + valuelen + 32;
  for (const auto& [n, v] : block) list_size += n.size() + v.size() + 32;
  if (list_size > self->settings_.max_header_list) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  std::string key(reinterpret_cast<const char*>(name), namelen);
  std::string val(reinterpret_cast<const char*>(value), valuelen);
  if (!stream->head_received_) {
    if (key == ":authority") stream->authority_ = val;
    if (key == ":status") {
      int status = 0;
      for (char c : val) status = status * 10 + (c - '0');
      stream->status_ = status;
    }
  }
  block.emplace_back(std::move(key), std::move(val));
  return 0;
}

int Session::onFrameRecv(nghttp2_session* h2, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Session*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_ = true;
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  Stream* stream = streamOf(h2, frame->hd.stream_id);
  if (stream == nullptr) return 0;
  // END_STREAM first: a request handler (which may run at once) then knows a head that came
  // alone has no body.
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) stream->onEndStream();
  if (frame->hd.type == NGHTTP2_HEADERS && !stream->head_received_) {
    if (self->role_ == Role::kServer && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      stream->head_received_ = true;
      auto it = self->streams_.find(frame->hd.stream_id);
      if (it != self->streams_.end() && self->on_request_) self->on_request_(it->second);
    } else if (self->role_ == Role::kClient && (stream->status_ >= 200 || stream->status_ == 101)) {
      stream->head_received_ = true;
      stream->onResponseHeaders();
    }
  }
  return 0;
}

int Session::onDataChunk(nghttp2_session* h2, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void*) {
  Stream* stream = streamOf(h2, stream_id);
  if (stream == nullptr) {
    // Data for a stream we no longer track still counts against the connection window.
    nghttp2_session_consume_connection(h2, len);
    return 0;
  }
  stream->onData(data, len);
  return 0;
}

int Session::onStreamClose(nghttp2_session* h2, int32_t stream_id, uint32_t error_code,
                           void* user) {
  auto* self = static_cast<Session*>(user);
  Stream* stream = streamOf(h2, stream_id);
  if (stream == nullptr) return 0;
  // Bytes received but never read must still be returned to the connection window.
  size_t unread = 0;
  for (const auto& chunk : stream->recv_) unread += chunk.size();
  unread -= stream->recv_front_offset_;
  if (unread > 0) nghttp2_session_consume_connection(h2, unread);
  auto keep = self->streams_.count(stream_id) ? self->streams_[stream_id] : nullptr;
  stream->onClosed(error_code);
  self->detach(stream_id);
  return 0;
}

// DATA payloads go from the stream's queue straight into the output (NGHTTP2_DATA_FLAG_NO_COPY):
// the read callback only says how much, onSendData writes the frame.
ssize_t Session::onReadData(nghttp2_session* h2, int32_t stream_id, uint8_t*, size_t length,
                            uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, stream->send_bytes_);
  if (stream->send_eof_ && n == stream->send_bytes_) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    // Trailers end the stream instead of this DATA frame (nghttp2 allows submitting them here).
    if (!stream->send_trailers_.empty()) {
      std::vector<nghttp2_nv> nva;
      for (const auto& [name, value] : stream->send_trailers_) nva.push_back(makeNv(name, value));
      if (nghttp2_submit_trailer(h2, stream_id, nva.data(), nva.size()) == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      stream->send_trailers_.clear();
    }
  }
  if (n == 0 && !(*data_flags & NGHTTP2_DATA_FLAG_EOF)) {
    stream->send_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  return static_cast<ssize_t>(n);
}

int Session::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* user) {
  auto* self = static_cast<Session*>(user);
  if (self->producing_ == nullptr) return NGHTTP2_ERR_WOULDBLOCK;
  std::string& out = *self->producing_;
  out.append(reinterpret_cast<const char*>(framehd), 9);
  if (frame->data.padlen > 0) out.push_back(static_cast<char>(frame->data.padlen - 1));
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t start = out.size();
  out.resize(start + length);
  bool eof = false;
  stream->takeSendBytes(reinterpret_cast<uint8_t*>(out.data() + start), length, eof);
  if (frame->data.padlen > 1) out.append(frame->data.padlen - 1, '\0');
  return 0;
}

ssize_t Session::onDataLength(nghttp2_session* h2, uint8_t, int32_t, int32_t, int32_t,
                              uint32_t remote_max_frame, void* user) {
  auto* self = static_cast<Session*>(user);
  (void)h2;
  return std::min(remote_max_frame, self->settings_.max_frame);
}

}  // namespace sluice::h2
