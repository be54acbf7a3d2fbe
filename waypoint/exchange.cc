// The protocol sides of a proxied request (see exchange.h).
#include "waypoint/exchange.h"

#include <boost/asio/buffer.hpp>
#include <charconv>
#include <cstdio>
#include <vector>

#include "core/h2/stream.h"
#include "waypoint/policy/match.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::optional<uint64_t> parseLength(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// HTTP/2 fields are lower case, and connection-specific ones are malformed there (RFC 9113
// section 8.2.2): what HTTP/1.1 would send as hop-by-hop never reaches an HTTP/2 peer.
std::vector<std::pair<std::string, std::string>> http2Fields(const HeaderList& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    if (isHopByHop(name) || equalsIgnoreCase(name, "host")) continue;
    out.emplace_back(asciiLower(name), value);
  }
  return out;
}

std::string trailerBlock(const HeaderList& trailers) {
  std::string out = "0\r\n";
  for (const auto& [name, value] : trailers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  return out;
}

// An HTTP/2 stream's body: END_STREAM ends it (`done`), it is not an error.
asio::awaitable<size_t> readStreamBody(h2::Stream& stream, bool& done, char* out, size_t capacity,
                                       error_code& ec) {
  ec = {};
  if (done) co_return 0;
  size_t n = co_await stream.read(asio::buffer(out, capacity), ec);
  if (ec == asio::error::eof) {
    ec = {};
    done = true;
  }
  co_return n;
}

// --- HTTP/1.1 downstream -------------------------------------------------------------------

class Http1Request final : public DownstreamRequest {
 public:
  Http1Request(ByteStream& stream, RequestReader& reader) : stream_(stream), reader_(reader) {
    const auto& message = reader.message();
    head_.method = std::string(message.method_string());
    head_.target = std::string(message.target());
    head_.version = message.version();
    head_.keep_alive = message.keep_alive();
    head_.headers = forwardableHeaders(message);
    if (message.has_content_length())
      head_.body.length = parseLength(message[http::field::content_length]);
    head_.body.none = reader.done();
    if (auto te = message.find(http::field::te); te != message.end())
      head_.trailers = listHasToken(te->value(), "trailers");
    // An h2c upgrade is declined by ignoring it (RFC 9113 section 3.1 dropped it anyway); any
    // other protocol is the app's business and passes through.
    if (reader.parser().upgrade()) {
      std::string_view wanted = message[http::field::upgrade];
      if (!listHasToken(wanted, "h2c")) head_.upgrade = std::string(wanted);
    }
  }

  asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) override {
    co_return co_await reader_.readBody(out, capacity, ec);
  }
  bool bodyDone() const override { return reader_.done(); }

  asio::awaitable<void> sendContinue(error_code& ec) override {
    co_await stream_.write(asio::buffer(kContinue), ec);
  }

  asio::awaitable<void> sendHead(int status, std::string_view reason, const HeaderList& headers,
                                 BodySize body, error_code& ec) override {
    ec = {};
    Framing framing;
    AddedHeaders extra;
    std::string length;
    if (body.none || status == 101) {
      if (body.length) {
        length = std::to_string(*body.length);
        extra.add("content-length", length);
      }
    } else if (body.length) {
      framing = {Framing::Kind::kLength, *body.length};
    } else if (head_.version >= 11) {
      framing = {Framing::Kind::kChunked, 0};
    } else {
      // An HTTP/1.0 client cannot read chunks (RFC 9112 section 6.1): the end of the
      // connection ends the body.
      framing = {Framing::Kind::kUntilClose, 0};
    }
    chunked_ = framing.kind == Framing::Kind::kChunked;
    if (status == 101) {
      // The connection is the app's now: no next request, and no "connection: close" either.
      extra.add("connection", "upgrade");
      extra.add("upgrade", head_.upgrade);
      pending_ = responseHead(status, reason, headers, framing, true, extra);
      keep_alive_ = false;
      co_await flush(ec);
      co_return;
    }
    // An unread request body would be taken for the next request: close instead.
    keep_alive_ = head_.keep_alive && reader_.done() && framing.kind != Framing::Kind::kUntilClose;
    // The head goes out with the first piece of body: one write instead of two.
    pending_ = responseHead(status, reason, headers, framing, keep_alive_, extra);
  }

  asio::awaitable<void> sendData(std::string_view data, bool last, error_code& ec) override {
    ec = {};
    if (chunked_)
      pending_ += chunk(data);
    else
      pending_.append(data);
    if (!last) co_await flush(ec);
  }

  asio::awaitable<void> endResponse(const HeaderList& trailers, error_code& ec) override {
    ec = {};
    if (chunked_) pending_ += head_.trailers ? trailerBlock(trailers) : std::string(kLastChunk);
    co_await flush(ec);
  }

  void abort() override {
    failed_ = true;
    stream_.abort();
  }
  bool reusable() const override { return keep_alive_ && !failed_; }
  ByteStream* rawStream() override { return &stream_; }
  boost::beast::flat_buffer* rawBuffered() override { return reader_.buffered(); }

 private:
  asio::awaitable<void> flush(error_code& ec) {
    if (pending_.empty()) co_return;
    co_await stream_.write(asio::buffer(pending_), ec);
    pending_.clear();
    if (ec) failed_ = true;
  }

  ByteStream& stream_;
  RequestReader& reader_;
  std::string pending_;
  bool chunked_ = false;
  bool keep_alive_ = false;
  bool failed_ = false;
};

// --- HTTP/2 downstream ---------------------------------------------------------------------

class Http2Request final : public DownstreamRequest {
 public:
  explicit Http2Request(std::shared_ptr<h2::Stream> stream) : stream_(std::move(stream)) {
    head_.version = 20;
    std::string authority;
    for (const auto& [name, value] : stream_->headers()) {
      if (name == ":method")
        head_.method = value;
      else if (name == ":path")
        head_.target = value;
      else if (name == ":authority")
        authority = value;
      else if (name.starts_with(':'))
        continue;
      else if (name == "te")
        head_.trailers = listHasToken(value, "trailers");
      else if (name == "content-length")
        head_.body.length = parseLength(value);
      else if (name == "host" && authority.empty())
        authority = value;
      else if (!isHopByHop(name) && name != "host")
        head_.headers.emplace_back(name, value);
    }
    head_.headers.emplace(head_.headers.begin(), "host", authority);
    head_.body.none = stream_->finishedReading();
  }

  asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) override {
    co_return co_await readStreamBody(*stream_, done_, out, capacity, ec);
  }
  bool bodyDone() const override { return done_ || stream_->finishedReading(); }
  HeaderList trailers() const override {
    return HeaderList(stream_->trailers().begin(), stream_->trailers().end());
  }
  asio::awaitable<void> sendContinue(error_code& ec) override {
    ec = {};  // HTTP/2 clients rarely wait; the body is read regardless
    co_return;
  }

  asio::awaitable<void> sendHead(int status, std::string_view, const HeaderList& headers,
                                 BodySize body, error_code& ec) override {
    ec = {};
    if (stream_->wasReset()) {
      ec = asio::error::connection_reset;
      co_return;
    }
    auto fields = http2Fields(headers);
    if (body.length) fields.emplace_back("content-length", std::to_string(*body.length));
    has_body_ = !body.none;
    stream_->respond(status, fields, has_body_);
  }

  asio::awaitable<void> sendData(std::string_view data, bool, error_code& ec) override {
    ec = {};
    if (data.empty()) co_return;
    co_await stream_->write(asio::buffer(data), ec);
  }

  asio::awaitable<void> endResponse(const HeaderList& trailers, error_code& ec) override {
    ec = stream_->wasReset() ? error_code(asio::error::connection_reset) : error_code();
    if (has_body_) stream_->closeWrite(http2Fields(trailers));
    co_return;
  }

  void abort() override { stream_->reset(NGHTTP2_INTERNAL_ERROR); }
  bool reusable() const override { return false; }  // one stream, one request

 private:
  std::shared_ptr<h2::Stream> stream_;
  bool done_ = false;
  bool has_body_ = false;
};

// --- HTTP/1.1 upstream ---------------------------------------------------------------------

class Http1Call final : public UpstreamCall {
 public:
  Http1Call(std::unique_ptr<Http1Connection> connection, bool reused)
      : connection_(std::move(connection)), reused_(reused) {}

  asio::awaitable<void> start(const UpstreamRequest& request, std::string_view body, bool complete,
                              error_code& ec) override {
    head_request_ = request.method == "HEAD";
    Framing framing;
    if (!complete) {
      framing = request.body.length ? Framing{Framing::Kind::kLength, *request.body.length}
                                    : Framing{Framing::Kind::kChunked, 0};
    } else if (!body.empty() || request.body.length) {
      framing = {Framing::Kind::kLength, body.size()};
    }
    chunked_ = framing.kind == Framing::Kind::kChunked;
    AddedHeaders extra;
    if (request.trailers) extra.add("te", "trailers");
    if (!request.upgrade.empty()) {
      extra.add("connection", "upgrade");
      extra.add("upgrade", request.upgrade);
    }
    std::string wire = requestHead(request.method, request.target, request.headers, framing, extra);
    if (chunked_)
      wire += chunk(body);
    else
      wire.append(body);
    co_await connection_->stream->write(asio::buffer(wire), ec);
  }

  asio::awaitable<void> sendBody(std::string_view data, error_code& ec) override {
    if (data.empty()) co_return;
    if (chunked_) {
      std::string framed = chunk(data);
      co_await connection_->stream->write(asio::buffer(framed), ec);
    } else {
      co_await connection_->stream->write(asio::buffer(data), ec);
    }
  }

  asio::awaitable<void> endBody(const HeaderList& trailers, error_code& ec) override {
    ec = {};
    if (!chunked_) co_return;
    const std::string end = trailers.empty() ? std::string(kLastChunk) : trailerBlock(trailers);
    co_await connection_->stream->write(asio::buffer(end), ec);
  }

  asio::awaitable<error_code> readHead() override {
    error_code ec;
    // Interim 1xx answers (other than 101) are not the response: read on.
    while (!ec) {
      reader_ = std::make_unique<ResponseReader>(*connection_->stream, connection_->in);
      if (head_request_) reader_->skipBody();
      ec = co_await reader_->readHeader();
      int code = ec ? 0 : reader_->message().result_int();
      if (code < 100 || code >= 200 || code == 101) break;
    }
    if (ec) co_return ec;
    const auto& message = reader_->message();
    status = message.result_int();
    reason = std::string(message.reason());
    headers = forwardableHeaders(message);
    if (message.has_content_length())
      body.length = parseLength(message[http::field::content_length]);
    body.none = head_request_ || status == 204 || status == 304 || status < 200;
    if (auto it = message.find("grpc-status"); it != message.end())
      if (auto code = parseLength(it->value())) grpc_status = static_cast<int>(*code);
    co_return ec;
  }

  asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) override {
    co_return co_await reader_->readBody(out, capacity, ec);
  }
  bool bodyDone() const override { return !reader_ || reader_->done(); }
  void abort() override { connection_->stream->abort(); }
  bool neverSent(error_code ec) const override {
    // A pooled connection the app closed as the request left: its FIN (or, for a socket, the
    // reset our unread request caused) came before any answer.
    return reused_ && (ec == http::error::end_of_stream || ec == asio::error::connection_reset);
  }
  std::unique_ptr<Http1Connection> reusableConnection() override {
    if (!reader_ || !reader_->done() || !reader_->message().keep_alive() || status == 101)
      return nullptr;
    return std::move(connection_);
  }
  ByteStream* rawStream() override { return connection_->stream.get(); }
  boost::beast::flat_buffer* rawBuffered() override { return &connection_->in; }

 private:
  std::unique_ptr<Http1Connection> connection_;
  std::unique_ptr<ResponseReader> reader_;
  bool reused_;
  bool chunked_ = false;
  bool head_request_ = false;
};

// --- HTTP/2 upstream -----------------------------------------------------------------------

class Http2Call final : public UpstreamCall {
 public:
  explicit Http2Call(std::shared_ptr<Http2Connection> connection)
      : connection_(std::move(connection)) {
    ++connection_->requests;
  }
  ~Http2Call() override {
    // An answer nobody reads any more must not hold the connection's window.
    if (stream_ && !stream_->finishedReading()) stream_->reset();
  }

  asio::awaitable<void> start(const UpstreamRequest& request, std::string_view data, bool complete,
                              error_code& ec) override {
    ec = {};
    std::string authority;
    for (const auto& [name, value] : request.headers)
      if (equalsIgnoreCase(name, "host")) authority = value;
    h2::Headers fields;
    fields.emplace_back(":method", request.method);
    fields.emplace_back(":scheme", "http");
    fields.emplace_back(":authority", authority);
    fields.emplace_back(":path", request.target);
    for (auto& field : http2Fields(request.headers)) fields.push_back(std::move(field));
    if (request.trailers) fields.emplace_back("te", "trailers");
    if (complete && (!data.empty() || request.body.length))
      fields.emplace_back("content-length", std::to_string(data.size()));
    else if (!complete && request.body.length)
      fields.emplace_back("content-length", std::to_string(*request.body.length));
    const bool has_body = !(complete && data.empty());
    auto opened = connection_->session().request(fields, has_body);
    if (!opened) {
      error = opened.message();
      ec = asio::error::connection_aborted;
      co_return;
    }
    stream_ = *opened;
    if (!data.empty()) co_await stream_->write(asio::buffer(data), ec);
    if (!ec && complete && has_body) stream_->closeWrite();
  }

  asio::awaitable<void> sendBody(std::string_view data, error_code& ec) override {
    if (data.empty()) co_return;
    co_await stream_->write(asio::buffer(data), ec);
  }
  asio::awaitable<void> endBody(const HeaderList& trailers, error_code& ec) override {
    ec = {};
    stream_->closeWrite(http2Fields(trailers));
    co_return;
  }

  asio::awaitable<error_code> readHead() override {
    int code = co_await stream_->response();
    if (code == 0 || stream_->wasReset()) {
      error = stream_->resetReason();
      co_return error_code(asio::error::connection_reset);
    }
    status = code;
    for (const auto& [name, value] : stream_->headers()) {
      if (name.starts_with(':')) continue;
      if (name == "content-length") {
        body.length = parseLength(value);
        continue;
      }
      if (name == "grpc-status")
        if (auto parsed = parseLength(value)) grpc_status = static_cast<int>(*parsed);
      if (!isHopByHop(name)) headers.emplace_back(name, value);
    }
    body.none = stream_->finishedReading() || status == 204 || status == 304;
    co_return error_code();
  }

  asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec) override {
    co_return co_await readStreamBody(*stream_, done_, out, capacity, ec);
  }
  bool bodyDone() const override { return done_ || stream_->finishedReading(); }
  HeaderList trailers() const override {
    return HeaderList(stream_->trailers().begin(), stream_->trailers().end());
  }
  void abort() override {
    if (stream_) stream_->reset();
  }
  bool neverSent(error_code) const override {
    // REFUSED_STREAM promises the request was not processed (RFC 9113 section 8.7).
    return stream_ && stream_->closeCode() == NGHTTP2_REFUSED_STREAM;
  }

 private:
  std::shared_ptr<Http2Connection> connection_;
  std::shared_ptr<h2::Stream> stream_;
  bool done_ = false;
};

// Enough for the body loops of a busy worker at once (more are allocated and freed). A kept
// buffer costs only the pages a body touched: it is never zeroed.
constexpr size_t kBodyBufferStock = 64;

std::vector<std::unique_ptr<char[]>>& bodyBufferStock() {
  thread_local std::vector<std::unique_ptr<char[]>> stock;
  return stock;
}

}  // namespace

BodyBuffer::BodyBuffer() {
  auto& stock = bodyBufferStock();
  if (stock.empty()) {
    bytes_ = std::make_unique_for_overwrite<char[]>(kBodyChunk);
  } else {
    bytes_ = std::move(stock.back());
    stock.pop_back();
  }
}

BodyBuffer::~BodyBuffer() {
  auto& stock = bodyBufferStock();
  if (stock.size() < kBodyBufferStock) stock.push_back(std::move(bytes_));
}

int grpcStatusForHttp(int http_status) {
  switch (http_status) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;  // UNAVAILABLE
    default:
      return http_status >= 200 && http_status < 300 ? 0 : 2;  // OK, else UNKNOWN
  }
}

std::string grpcMessage(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", c);
      out += escaped;
    }
  }
  return out;
}

std::unique_ptr<DownstreamRequest> http1Request(ByteStream& stream, RequestReader& reader) {
  return std::make_unique<Http1Request>(stream, reader);
}

std::unique_ptr<DownstreamRequest> http2Request(std::shared_ptr<h2::Stream> stream) {
  return std::make_unique<Http2Request>(std::move(stream));
}

std::unique_ptr<UpstreamCall> http1Call(std::unique_ptr<Http1Connection> connection, bool reused) {
  return std::make_unique<Http1Call>(std::move(connection), reused);
}

std::unique_ptr<UpstreamCall> http2Call(std::shared_ptr<Http2Connection> connection) {
  return std::make_unique<Http2Call>(std::move(connection));
}

}  // namespace sluice::waypoint
