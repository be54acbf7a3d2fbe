// HTTP/1.1 messages over a byte stream (an HBONE tunnel, or a TCP socket in tests): Beast's
// parsers fed from our own buffer, so a coroutine reads the head, then the body in pieces of
// its choosing (a proxy streams bodies instead of holding them), and pipelined bytes stay in
// the buffer for the next message. Writing is plain serialisation: a head, then the body as
// is (known length) or in chunks.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cassert>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::h2 {
class Stream;
}

namespace sluice::waypoint {

namespace http = boost::beast::http;
using boost::system::error_code;

// Reads start at 16 KiB, enough for heads and small bodies, and grow to 64 KiB once one fills
// its buffer, so only a connection that carries a bulk body holds the larger buffer. (64 KiB
// reads on every connection were 3.4 MiB of the waypoint's RSS in bench/waypoint.sh, which
// keeps 64 connections open each way.)
inline constexpr size_t kFirstReadChunk = 16 * 1024;
inline constexpr size_t kBulkReadChunk = 64 * 1024;

// Bytes in both directions, closable per direction. Implementations are single-threaded.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Up to the buffer's size; 0 with ec = eof once the peer finished writing.
  virtual boost::asio::awaitable<size_t> read(boost::asio::mutable_buffer buffer,
                                              error_code& ec) = 0;
  virtual boost::asio::awaitable<void> write(boost::asio::const_buffer data, error_code& ec) = 0;
  virtual void closeWrite() = 0;
  // Abandons both directions at once (a reset the peer sees as an error, not as an end).
  virtual void abort() = 0;
  // While nobody reads: the peer ended or reset it (an idle keep-alive connection the app
  // closed), or sent bytes nobody asked for. Either way it can carry no further request.
  virtual bool closedByPeer() const = 0;
};

std::unique_ptr<ByteStream> wrapStream(std::shared_ptr<h2::Stream> stream);
std::unique_ptr<ByteStream> wrapSocket(boost::asio::ip::tcp::socket socket);

// An ordered, case-preserving header list; names compare case-insensitively.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The value of the first field named `name` (any case), or null.
const std::string* findHeader(const HeaderList& headers, std::string_view name);

// Whether a comma-separated header value (Connection, TE, Upgrade) lists `token` (any case).
bool listHasToken(std::string_view list, std::string_view token);
std::string asciiLower(std::string_view text);

// Hop-by-hop headers a proxy must not forward (RFC 9110 section 7.6.1), plus the framing
// headers it sets itself.
bool isHopByHop(std::string_view name);

// Reads one message (request or response) from `stream`, whose bytes land in `in` (shared by
// successive messages on the same connection, so pipelined bytes are kept).
template <bool kRequest>
class MessageReader {
 public:
  MessageReader(ByteStream& stream, boost::beast::flat_buffer& in) : stream_(stream), in_(in) {
    parser_.header_limit(64 * 1024);
    parser_.body_limit(boost::none);  // bodies are streamed, never held whole here
  }

  // Fills the head. eof before the first byte of a message is reported as
  // http::error::end_of_stream so a keep-alive connection that simply ends is told apart from a
  // truncated message.
  boost::asio::awaitable<error_code> readHeader();
  // Body bytes into [out, out + capacity); 0 when the body is complete (or there is none).
  boost::asio::awaitable<size_t> readBody(char* out, size_t capacity, error_code& ec);
  bool done() const { return parser_.is_done(); }
  // Responses to HEAD (and 1xx/204/304, which the parser knows) have no body.
  void skipBody() { parser_.skip(true); }

  http::parser<kRequest, http::buffer_body>& parser() { return parser_; }
  // Bytes read past this message (pipelined requests, or an upgraded protocol's first bytes).
  boost::beast::flat_buffer* buffered() { return &in_; }
  const http::message<kRequest, http::buffer_body>& message() { return parser_.get(); }

 private:
  boost::asio::awaitable<bool> fill(error_code& ec);  // false: eof (put_eof done) or error

  ByteStream& stream_;
  boost::beast::flat_buffer& in_;
  http::parser<kRequest, http::buffer_body> parser_;
  bool eof_ = false;
  size_t read_chunk_ = kFirstReadChunk;
};

using RequestReader = MessageReader<true>;
using ResponseReader = MessageReader<false>;

// How a message's body goes on the wire.
struct Framing {
  enum class Kind { kNone, kLength, kChunked, kUntilClose };
  Kind kind = Kind::kNone;
  uint64_t length = 0;
};

// Fields a head adds after `headers` (te, an upgrade's connection and upgrade), so that the
// list, copied once already from the message, is not copied again per hop.
using ExtraHeaders = std::span<const std::pair<std::string_view, std::string_view>>;
// The few fields one head adds, without allocating; the views must outlive the head's making.
class AddedHeaders {
 public:
  void add(std::string_view name, std::string_view value) {
    assert(size_ < fields_.size());
    fields_[size_++] = {name, value};
  }
  operator ExtraHeaders() const { return {fields_.data(), size_}; }

 private:
  std::array<std::pair<std::string_view, std::string_view>, 3> fields_;
  size_t size_ = 0;
};

// "GET /x HTTP/1.1\r\n<headers><extra>\r\n", with the framing header for `framing`.
std::string requestHead(std::string_view method, std::string_view target, const HeaderList& headers,
                        Framing framing, ExtraHeaders extra = {});
std::string responseHead(int status, std::string_view reason, const HeaderList& headers,
                         Framing framing, bool keep_alive, ExtraHeaders extra = {});
// A chunk ("<hex>\r\n<data>\r\n"); an empty `data` makes nothing (use kLastChunk to end).
std::string chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The fields of a parsed head as a list, hop-by-hop ones (and those the Connection header
// names) left out.
template <bool kRequest, class Body>
HeaderList forwardableHeaders(const http::message<kRequest, Body>& message);

// A complete small response (errors, redirects, direct responses) with a text body.
std::string simpleResponse(int status, std::string_view body, const HeaderList& extra,
                           bool keep_alive);

}  // namespace sluice::waypoint
