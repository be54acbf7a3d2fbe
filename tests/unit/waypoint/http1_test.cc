// HTTP/1.1 over a byte stream: messages however the bytes arrive (one at a time, several in one
// read), bodies streamed in pieces of the reader's choosing, errors for broken peers, and the
// serialisation the proxy writes.
#include "waypoint/http1.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <random>

#include "support/async_test.h"
#include "support/memory_byte_stream.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;
using sluice::testing::MemoryByteStream;

constexpr std::string_view kGet = "GET /x?y=1 HTTP/1.1\r\nHost: api-server\r\nX-A: 1\r\n\r\n";

// Runs `body` to completion on a fresh io_context (the streams here never wait).
void run(std::function<asio::awaitable<void>()> body) {
  asio::io_context io;
  sluice::testing::runAsync(io, std::move(body), std::chrono::seconds(10));
}

// The whole body of the message `reader` has the head of, read `capacity` bytes at a time.
asio::awaitable<std::string> readWholeBody(RequestReader& reader, size_t capacity, error_code& ec,
                                           size_t* largest_piece = nullptr) {
  std::string out;
  std::vector<char> buffer(capacity);
  while (!reader.done()) {
    size_t n = co_await reader.readBody(buffer.data(), buffer.size(), ec);
    if (ec) co_return out;
    if (largest_piece != nullptr) *largest_piece = std::max(*largest_piece, n);
    out.append(buffer.data(), n);
  }
  co_return out;
}

// What reading one request head from these reads ends with.
error_code headError(std::vector<std::string> reads) {
  MemoryByteStream stream(std::move(reads));
  error_code ec;
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    ec = co_await reader.readHeader();
  });
  return ec;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  std::mt19937_64 random(n);
  for (auto& c : out) c = static_cast<char>(random());
  return out;
}

TEST(Http1Reader, RequestHeadSplitAcrossOneByteReadsIsReadWhole) {
  MemoryByteStream stream(MemoryByteStream::pieces(kGet, 1));
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    EXPECT_EQ(reader.message().method_string(), "GET");
    EXPECT_EQ(reader.message().target(), "/x?y=1");
    EXPECT_EQ(reader.message()["host"], "api-server");
    EXPECT_TRUE(reader.done());  // a GET without framing headers has no body
  });
  EXPECT_EQ(stream.reads(), kGet.size());
}

TEST(Http1Reader, PipelinedRequestsInOneReadAreReadOneAfterTheOther) {
  std::string both =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\n"
      "Content-Length: 3\r\n\r\nabc";
  MemoryByteStream stream({both});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    {
      RequestReader first(stream, in);
      EXPECT_FALSE(co_await first.readHeader());
      EXPECT_EQ(first.message().target(), "/a");
      EXPECT_TRUE(first.done());
    }
    {
      RequestReader second(stream, in);
      EXPECT_FALSE(co_await second.readHeader());
      EXPECT_EQ(second.message().target(), "/b");
      error_code ec;
      EXPECT_EQ(co_await readWholeBody(second, 16, ec), "abc");
      EXPECT_FALSE(ec);
    }
    // Then the connection simply ends: that is not an error in the middle of a message.
    RequestReader third(stream, in);
    EXPECT_EQ(co_await third.readHeader(), error_code(http::error::end_of_stream));
  });
  EXPECT_EQ(stream.reads(), 1u);
}

TEST(Http1Reader, ChunkedBodyWithExtensionsAndTrailersIsDecoded) {
  std::string message =
      "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{7}, message.size()}) {
    MemoryByteStream stream(MemoryByteStream::pieces(message, piece));
    run([&]() -> asio::awaitable<void> {
      boost::beast::flat_buffer in;
      RequestReader reader(stream, in);
      EXPECT_FALSE(co_await reader.readHeader());
      EXPECT_TRUE(reader.message().chunked());
      error_code ec;
      EXPECT_EQ(co_await readWholeBody(reader, 4, ec), "hello world") << "pieces of " << piece;
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_TRUE(reader.done());
    });
  }
}

TEST(Http1Reader, LastChunkArrivingAloneEndsTheBodyWithoutWaitingForMoreBytes) {
  // Given a chunked body whose terminal chunk comes in a read of its own, and the next request
  // behind it (a peer that sends nothing more would leave a reader that reads on hanging),
  const std::string head = "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  MemoryByteStream stream({head, "5\r\nhello\r\n", "0\r\n\r\n", std::string(kGet)});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    error_code ec;
    EXPECT_EQ(co_await readWholeBody(reader, 1024, ec), "hello");
    EXPECT_FALSE(ec) << ec.message();
    // then the body ends on the terminal chunk: the next request's bytes are not read for it.
    EXPECT_EQ(stream.reads(), 3u);
  });
}

TEST(Http1Reader, ContentLengthBodyStreamsInPiecesSmallerThanTheBody) {
  const std::string body = randomBytes(100'000);
  std::string message =
      "PUT /blob HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  MemoryByteStream stream(MemoryByteStream::pieces(message, 1000));
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    error_code ec;
    size_t largest = 0;
    std::string received = co_await readWholeBody(reader, 300, ec, &largest);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(received.size(), body.size());
    EXPECT_TRUE(received == body);
    EXPECT_LE(largest, 300u);
  });
}

TEST(Http1Reader, BodyCutShortByTheEndOfTheStreamIsAnError) {
  MemoryByteStream stream({"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    error_code ec;
    co_await readWholeBody(reader, 64, ec);
    EXPECT_EQ(ec, error_code(http::error::partial_message));
    EXPECT_FALSE(reader.done());
  });
}

TEST(Http1Reader, HeadCutShortByTheEndOfTheStreamIsAnError) {
  EXPECT_EQ(headError({"GET / HTTP/1.1\r\nHos"}), error_code(http::error::partial_message));
}

TEST(Http1Reader, ChunkedBodyWithABadChunkSizeIsAnError) {
  MemoryByteStream stream(
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    error_code ec;
    co_await readWholeBody(reader, 64, ec);
    EXPECT_TRUE(ec);
    EXPECT_NE(ec, error_code(http::error::partial_message));
  });
}

TEST(Http1Reader, ResponseToHeadHasNoBodyWhateverItsContentLength) {
  MemoryByteStream stream(
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
       "HTTP/1.1 204 No Content\r\n\r\n"});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    {
      ResponseReader head(stream, in);
      head.skipBody();
      EXPECT_FALSE(co_await head.readHeader());
      EXPECT_EQ(head.message().result_int(), 200);
      EXPECT_TRUE(head.done());
    }
    ResponseReader next(stream, in);
    EXPECT_FALSE(co_await next.readHeader());
    EXPECT_EQ(next.message().result_int(), 204);
    EXPECT_TRUE(next.done());
  });
}

TEST(Http1Reader, ResponseWithoutLengthEndsWithTheStream) {
  MemoryByteStream stream({"HTTP/1.1 200 OK\r\n\r\n", "until ", "close"});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    ResponseReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    std::string body;
    char buffer[64];
    error_code ec;
    while (!reader.done() && !ec) {
      size_t n = co_await reader.readBody(buffer, sizeof buffer, ec);
      body.append(buffer, n);
    }
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(body, "until close");
  });
}

TEST(Http1Reader, HeaderLargerThanTheLimitIsAnError) {
  std::string huge =
      "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  EXPECT_EQ(headError(MemoryByteStream::pieces(huge, 4096)), error_code(http::error::header_limit));
}

TEST(Http1Reader, EndOfStreamBeforeAnyByteIsEndOfStream) {
  EXPECT_EQ(headError({}), error_code(http::error::end_of_stream));
}

TEST(Http1Headers, ForwardableHeadersDropHopByHopAndConnectionNamedOnes) {
  MemoryByteStream stream(
      {"POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n"
       "Keep-Alive: timeout=5\r\nX-Secret: s\r\nTE: trailers\r\n"
       "Transfer-Encoding: chunked\r\nUpgrade: h2c\r\n"
       "Proxy-Authorization: basic x\r\nX-Keep: 1\r\nx-keep: 2\r\n\r\n0\r\n\r\n"});
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    HeaderList expected{{"Host", "h"}, {"X-Keep", "1"}, {"x-keep", "2"}};
    EXPECT_EQ(forwardableHeaders(reader.message()), expected);
  });
}

TEST(Http1Headers, HopByHopNamesCompareCaseInsensitively) {
  EXPECT_TRUE(isHopByHop("Connection"));
  EXPECT_TRUE(isHopByHop("TRANSFER-ENCODING"));
  EXPECT_TRUE(isHopByHop("content-length"));  // the proxy sets framing itself
  EXPECT_FALSE(isHopByHop("content-type"));
  EXPECT_FALSE(isHopByHop("x-connection"));
}

TEST(Http1Write, RequestHeadCarriesTheFramingHeader) {
  HeaderList headers{{"host", "api"}, {"X-A", "b"}};
  EXPECT_EQ(requestHead("GET", "/x", headers, {}),
            "GET /x HTTP/1.1\r\nhost: api\r\nX-A: b\r\n\r\n");
  EXPECT_EQ(requestHead("POST", "/x", headers, {Framing::Kind::kLength, 12}),
            "POST /x HTTP/1.1\r\nhost: api\r\nX-A: b\r\ncontent-length: 12\r\n\r\n");
  EXPECT_EQ(requestHead("POST", "/x", {}, {Framing::Kind::kChunked, 0}),
            "POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
  // Added fields follow the list, before the framing header.
  AddedHeaders added;
  added.add("te", "trailers");
  EXPECT_EQ(requestHead("POST", "/x", headers, {Framing::Kind::kLength, 2}, added),
            "POST /x HTTP/1.1\r\nhost: api\r\nX-A: b\r\nte: trailers\r\ncontent-length: 2\r\n\r\n");
}

TEST(Http1Write, ResponseHeadSaysCloseUnlessKeptAlive) {
  EXPECT_EQ(responseHead(200, "", {}, {Framing::Kind::kLength, 0}, true),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  EXPECT_EQ(responseHead(503, "", {{"x-a", "1"}}, {}, false),
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nx-a: 1\r\n\r\n");
  EXPECT_EQ(responseHead(299, "Custom", {}, {Framing::Kind::kChunked, 0}, true),
            "HTTP/1.1 299 Custom\r\ntransfer-encoding: chunked\r\n\r\n");
}

TEST(Http1Write, ChunkIsHexLengthThenDataAndEmptyMakesNothing) {
  EXPECT_EQ(chunk("hello"), "5\r\nhello\r\n");
  EXPECT_EQ(chunk(std::string(26, 'z')), "1a\r\n" + std::string(26, 'z') + "\r\n");
  EXPECT_EQ(chunk(""), "");
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
}

TEST(Http1Write, WhatTheWriterMakesTheReaderReadsBack) {
  const std::string body = randomBytes(5000);
  std::string wire = requestHead("PUT", "/round", {{"host", "h"}}, {Framing::Kind::kChunked, 0}) +
                     chunk(body.substr(0, 1234)) + chunk(body.substr(1234)) +
                     std::string(kLastChunk) +
                     simpleResponse(418, "teapot\n", {{"x-why", "test"}}, false);
  MemoryByteStream stream(MemoryByteStream::pieces(wire, 333));
  run([&]() -> asio::awaitable<void> {
    boost::beast::flat_buffer in;
    RequestReader reader(stream, in);
    EXPECT_FALSE(co_await reader.readHeader());
    EXPECT_EQ(reader.message().method_string(), "PUT");
    error_code ec;
    EXPECT_TRUE(co_await readWholeBody(reader, 1000, ec) == body);
    EXPECT_FALSE(ec);
    // The response after it on the same buffer: simpleResponse frames its body by length.
    ResponseReader response(stream, in);
    EXPECT_FALSE(co_await response.readHeader());
    EXPECT_EQ(response.message().result_int(), 418);
    EXPECT_FALSE(response.message().keep_alive());
    EXPECT_EQ(response.message()["x-why"], "test");
    char buffer[64];
    size_t n = co_await response.readBody(buffer, sizeof buffer, ec);
    EXPECT_EQ(std::string(buffer, n), "teapot\n");
  });
}

}  // namespace
}  // namespace sluice::waypoint
