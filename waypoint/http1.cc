// HTTP/1.1 reading and writing over byte streams (see http1.h).
#include "waypoint/http1.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>

#include "core/h2/stream.h"
#include "core/net/sockets.h"
#include "waypoint/policy/match.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;

class HboneByteStream final : public ByteStream {
 public:
  explicit HboneByteStream(std::shared_ptr<h2::Stream> stream) : stream_(std::move(stream)) {}
  asio::awaitable<size_t> read(asio::mutable_buffer buffer, error_code& ec) override {
    co_return co_await stream_->read(buffer, ec);
  }
  asio::awaitable<void> write(asio::const_buffer data, error_code& ec) override {
    co_await stream_->write(data, ec);
  }
  void closeWrite() override { stream_->closeWrite(); }
  void abort() override { stream_->reset(); }
  bool closedByPeer() const override { return stream_->wasReset() || stream_->peerEnded(); }

 private:
  std::shared_ptr<h2::Stream> stream_;
};

class SocketByteStream final : public ByteStream {
 public:
  explicit SocketByteStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  asio::awaitable<size_t> read(asio::mutable_buffer buffer, error_code& ec) override {
    auto [error, n] = co_await socket_.async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
    ec = error;
    co_return n;
  }
  // What the socket takes at once needs no trip through the event loop.
  asio::awaitable<void> write(asio::const_buffer data, error_code& ec) override {
    co_await net::writeAll(socket_, data, ec);
  }
  void closeWrite() override {
    error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
  void abort() override {
    error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
  }
  bool closedByPeer() const override {
    // A peek that finds nothing to read (EAGAIN) is the only answer of a live idle connection:
    // 0 is the peer's FIN, bytes are unasked for, an error a reset.
    char byte;
    const ssize_t n = ::recv(const_cast<asio::ip::tcp::socket&>(socket_).native_handle(), &byte, 1,
                             MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

 private:
  asio::ip::tcp::socket socket_;
};

std::string_view framingHeaderName(Framing::Kind kind) {
  return kind == Framing::Kind::kLength ? "content-length" : "transfer-encoding";
}

// What appendHeaders() adds, at most: the fields, the framing header and the blank line.
size_t headersSize(const HeaderList& headers, ExtraHeaders extra) {
  size_t size = 64;
  for (const auto& [name, value] : headers) size += name.size() + value.size() + 4;
  for (const auto& [name, value] : extra) size += name.size() + value.size() + 4;
  return size;
}

void appendHeaders(std::string& out, const HeaderList& headers, ExtraHeaders extra,
                   Framing framing) {
  auto field = [&out](std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  };
  for (const auto& [name, value] : headers) field(name, value);
  for (const auto& [name, value] : extra) field(name, value);
  if (framing.kind == Framing::Kind::kLength) {
    out += framingHeaderName(framing.kind);
    out += ": " + std::to_string(framing.length) + "\r\n";
  } else if (framing.kind == Framing::Kind::kChunked) {
    out += "transfer-encoding: chunked\r\n";
  }
  out += "\r\n";
}

}  // namespace

std::unique_ptr<ByteStream> wrapStream(std::shared_ptr<h2::Stream> stream) {
  return std::make_unique<HboneByteStream>(std::move(stream));
}

std::unique_ptr<ByteStream> wrapSocket(asio::ip::tcp::socket socket) {
  return std::make_unique<SocketByteStream>(std::move(socket));
}

const std::string* findHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers)
    if (equalsIgnoreCase(n, name)) return &v;
  return nullptr;
}

bool isHopByHop(std::string_view name) {
  for (std::string_view hop :
       {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "content-length", "proxy-authenticate", "proxy-authorization"})
    if (equalsIgnoreCase(name, hop)) return true;
  return false;
}

template <bool kRequest>
asio::awaitable<bool> MessageReader<kRequest>::fill(error_code& ec) {
  if (eof_) co_return false;
  size_t n = co_await stream_.read(in_.prepare(read_chunk_), ec);
  in_.commit(n);
  if (n == read_chunk_) read_chunk_ = kBulkReadChunk;
  if (ec == asio::error::eof) {
    ec = {};
    eof_ = true;
    if (parser_.got_some() && !parser_.is_done()) parser_.put_eof(ec);
    co_return false;
  }
  co_return !ec;
}

template <bool kRequest>
asio::awaitable<error_code> MessageReader<kRequest>::readHeader() {
  error_code ec;
  while (!parser_.is_header_done()) {
    if (in_.size() > 0) {
      size_t used = parser_.put(in_.data(), ec);
      in_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
      } else if (ec) {
        co_return ec;
      } else {
        continue;
      }
    }
    bool had_some = parser_.got_some();
    if (!co_await fill(ec)) {
      if (ec) co_return ec;
      co_return had_some ? error_code(http::error::partial_message)
                         : error_code(http::error::end_of_stream);
    }
  }
  co_return ec;
}

template <bool kRequest>
asio::awaitable<size_t> MessageReader<kRequest>::readBody(char* out, size_t capacity,
                                                          error_code& ec) {
  ec = {};
  auto& body = parser_.get().body();
  body.data = out;
  body.size = capacity;
  body.more = true;
  while (!parser_.is_done()) {
    if (in_.size() > 0) {
      size_t used = parser_.put(in_.data(), ec);
      in_.consume(used);
      if (ec == http::error::need_buffer) {  // `out` is full
        ec = {};
        break;
      }
      if (ec && ec != http::error::need_more) co_return 0;
      ec = {};
      if (body.size < capacity) break;  // some body bytes: hand them on now
      if (parser_.is_done()) break;     // the last chunk came alone: nothing more to read
      if (used > 0 && in_.size() > 0) continue;
    }
    if (!co_await fill(ec)) {
      if (ec) co_return 0;
      if (!parser_.is_done()) {
        ec = http::error::partial_message;
        co_return 0;
      }
      break;
    }
  }
  co_return capacity - body.size;
}

template class MessageReader<true>;
template class MessageReader<false>;

bool listHasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (equalsIgnoreCase(item, token)) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

std::string asciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <bool kRequest, class Body>
HeaderList forwardableHeaders(const http::message<kRequest, Body>& message) {
  // Headers the Connection header names are hop-by-hop too.
  std::string connection;
  for (const auto& field : message.base())
    if (equalsIgnoreCase(field.name_string(), "connection")) (connection += field.value()) += ',';
  HeaderList out;
  for (const auto& field : message.base()) {
    std::string_view name = field.name_string();
    if (isHopByHop(name) || listHasToken(connection, name)) continue;
    out.emplace_back(std::string(name), std::string(field.value()));
  }
  return out;
}

template HeaderList forwardableHeaders(const http::message<true, http::buffer_body>&);
template HeaderList forwardableHeaders(const http::message<false, http::buffer_body>&);

std::string requestHead(std::string_view method, std::string_view target, const HeaderList& headers,
                        Framing framing, ExtraHeaders extra) {
  std::string out;
  out.reserve(method.size() + target.size() + 12 + headersSize(headers, extra));  // one allocation
  out += method;
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\n";
  appendHeaders(out, headers, extra, framing);
  return out;
}

std::string responseHead(int status, std::string_view reason, const HeaderList& headers,
                         Framing framing, bool keep_alive, ExtraHeaders extra) {
  std::string out;
  // A small body follows in the same buffer (the proxy writes the head with the first piece).
  const size_t body_room =
      framing.kind == Framing::Kind::kLength ? std::min<uint64_t>(framing.length, 16 * 1024) : 0;
  out.reserve(64 + reason.size() + headersSize(headers, extra) + body_room);
  out += "HTTP/1.1 " + std::to_string(status) + " ";
  out += reason.empty() ? std::string_view(http::obsolete_reason(http::int_to_status(status)))
                        : reason;
  out += "\r\n";
  if (!keep_alive) out += "connection: close\r\n";
  appendHeaders(out, headers, extra, framing);
  return out;
}

std::string chunk(std::string_view data) {
  if (data.empty()) return {};
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size);
  out += data;
  out += "\r\n";
  return out;
}

std::string simpleResponse(int status, std::string_view body, const HeaderList& extra,
                           bool keep_alive) {
  HeaderList headers = extra;
  headers.emplace_back("content-type", "text/plain");
  std::string out =
      responseHead(status, {}, headers, {Framing::Kind::kLength, body.size()}, keep_alive);
  out += body;
  return out;
}

}  // namespace sluice::waypoint
