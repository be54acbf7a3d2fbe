// HTTP/2 CONNECT semantics between a client and a server Session joined in memory (no TLS):
// the protocol behaviour, isolated from sockets.
#include "core/h2/session.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <optional>

#include "core/h2/stream.h"
#include "support/async_test.h"

namespace sluice::h2 {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

// Moves bytes between two sessions until both are quiet, then waits for either to have output.
asio::awaitable<void> pump(Session& a, Session& b, bool& stop) {
  while (!stop) {
    bool moved = false;
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      std::string out;
      if (from->produce(out, 1 << 20)) {
        moved = true;
        auto r = to->receive({reinterpret_cast<const uint8_t*>(out.data()), out.size()});
        if (!r) co_return;
      }
    }
    if (!moved) co_await (a.outputReady().wait() || b.outputReady().wait());
  }
}

struct Pair {
  asio::io_context io;
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  std::vector<std::shared_ptr<Stream>> requests;
  std::vector<bool> ended_when_handed;  // finishedReading() as the request handler saw it
  bool stop = false;

  // `client_settings`: the client's own, when it must differ (a peer that ignores our limits).
  explicit Pair(SessionSettings settings = {},
                std::optional<SessionSettings> client_settings = std::nullopt) {
    client = Session::create(io.get_executor(), Role::kClient, client_settings.value_or(settings))
                 .value();
    server = Session::create(io.get_executor(), Role::kServer, settings,
                             [this](std::shared_ptr<Stream> s) {
                               ended_when_handed.push_back(s->finishedReading());
                               requests.push_back(s);
                             })
                 .value();
    asio::co_spawn(io, pump(*client, *server, stop), asio::detached);
  }
  ~Pair() {
    stop = true;
    client->outputReady().notify();
    io.run_for(std::chrono::milliseconds(100));
  }
  asio::awaitable<std::shared_ptr<Stream>> nextRequest() {
    co_await testing::eventually([this] { return !requests.empty(); }, std::chrono::seconds(5));
    auto s = requests.front();
    requests.erase(requests.begin());
    co_return s;
  }
};

asio::awaitable<std::string> readAll(Stream& stream, boost::system::error_code& ec) {
  std::string all;
  char buf[4096];
  for (;;) {
    size_t n = co_await stream.read(asio::buffer(buf), ec);
    if (ec) break;
    all.append(buf, n);
  }
  co_return all;
}

TEST(HboneSession, ConnectCarriesAuthorityAndHeadersAndOpensTunnelOn200) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {{"forwarded", "for=\"198.18.0.1\""}});
    EXPECT_TRUE(client) << client.message();
    auto server = co_await p.nextRequest();
    EXPECT_EQ(server->authority(), "198.18.0.2:8080");
    EXPECT_EQ(server->header(":method"), "CONNECT");
    EXPECT_EQ(server->header("forwarded"), "for=\"198.18.0.1\"");
    server->respond(200);
    EXPECT_EQ(co_await (*client)->response(), 200);

    boost::system::error_code ec;
    co_await (*client)->write(asio::buffer(std::string("ping")), ec);
    (*client)->closeWrite();
    EXPECT_EQ(co_await readAll(*server, ec), "ping");
    EXPECT_EQ(ec, asio::error::eof) << "half-close arrives as end of stream";
    co_await server->write(asio::buffer(std::string("pong")), ec);
    EXPECT_FALSE(ec) << "the other direction stays open after a half-close";
    server->closeWrite();
    EXPECT_EQ(co_await readAll(**client, ec), "pong");
    EXPECT_EQ(ec, asio::error::eof);
  });
}

// The waypoint's HTTP/2 uses the same sessions for plain requests.
TEST(HboneSession, RequestWithoutBodyGetsAResponseWithBodyAndTrailers) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->request(
        {{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/x"}}, false);
    EXPECT_TRUE(client) << client.message();
    if (!client) co_return;
    auto server = co_await p.nextRequest();
    EXPECT_EQ(server->header(":path"), "/x");
    EXPECT_TRUE(server->finishedReading()) << "END_STREAM came with the head";
    // A handler that runs at once (the waypoint's does) already knows there is no body.
    EXPECT_TRUE(p.ended_when_handed.at(0));
    server->respond(200, {{"content-type", "application/grpc"}}, true);
    boost::system::error_code ec;
    co_await server->write(asio::buffer(std::string("answer")), ec);
    server->closeWrite({{"grpc-status", "0"}, {"grpc-message", "fine"}});
    EXPECT_EQ(co_await (*client)->response(), 200);
    EXPECT_EQ((*client)->header("content-type"), "application/grpc");
    EXPECT_EQ(co_await readAll(**client, ec), "answer");
    EXPECT_EQ(ec, asio::error::eof);
    Headers expected{{"grpc-status", "0"}, {"grpc-message", "fine"}};
    EXPECT_EQ((*client)->trailers(), expected);
    EXPECT_EQ((*client)->header("grpc-status"), "") << "trailers are not head fields";
  });
}

TEST(HboneSession, TrailersOnlyResponseEndsTheStreamWithItsHead) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->request(
        {{":method", "POST"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/x"}}, true);
    auto server = co_await p.nextRequest();
    server->respond(200, {{"grpc-status", "14"}}, false);
    EXPECT_EQ(co_await (*client)->response(), 200);
    EXPECT_EQ((*client)->header("grpc-status"), "14");
    boost::system::error_code ec;
    EXPECT_EQ(co_await readAll(**client, ec), "");
    EXPECT_EQ(ec, asio::error::eof);
  });
}

TEST(HboneSession, AHeadWithMoreFieldsThanTheLimitResetsTheStream) {
  SessionSettings settings;
  settings.max_headers = 8;
  Pair p(settings);
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    Headers fields{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}};
    for (int i = 0; i < 10; ++i) fields.emplace_back("x-field-" + std::to_string(i), "v");
    auto client = p.client->request(fields, false);
    EXPECT_TRUE(client) << client.message();
    if (!client) co_return;
    // Then the stream is reset, not delivered with fields silently missing.
    EXPECT_EQ(co_await (*client)->response(), 0);
    EXPECT_TRUE((*client)->wasReset());
    EXPECT_TRUE(p.requests.empty());
  });
}

// A GET whose one 2 KB field is repeated `copies` times: HPACK sends the repeats as table
// indexes, so the block stays about 2 KB on the wire whatever it decodes to.
Headers repeatedField(int copies) {
  Headers fields{{":method", "GET"}, {":scheme", "http"}, {":authority", "api"}, {":path", "/"}};
  for (int i = 0; i < copies; ++i) fields.emplace_back("x-big", std::string(2000, 'a'));
  return fields;
}

TEST(HboneSession, AHeadOverTheAdvertisedHeaderListSizeResetsTheStream) {
  // Given the server's default 16 KiB header-list limit, and a client that ignores it (its own
  // limit raised, as a hostile peer's would be)
  SessionSettings generous;
  generous.max_header_list = 1u << 20;
  Pair p({}, generous);
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    // When a head decodes to 20 KB, and then one of 12 KB
    auto over = p.client->request(repeatedField(10), false);
    auto under = p.client->request(repeatedField(6), false);
    EXPECT_TRUE(over && under);
    if (!over || !under) co_return;
    // Then the first is reset and never delivered; the second is delivered
    EXPECT_EQ(co_await (*over)->response(), 0);
    EXPECT_TRUE((*over)->wasReset());
    EXPECT_TRUE(co_await testing::eventually([&] { return p.requests.size() == 1; },
                                             std::chrono::milliseconds(5000)));
    if (p.requests.size() == 1) {
      EXPECT_EQ(p.requests[0]->headers().size(), 4u + 6u);
    }
    (*under)->reset();
  });
}

TEST(HboneSession, NonOkStatusRefusesTheTunnel) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(503);
    EXPECT_EQ(co_await (*client)->response(), 503);
    boost::system::error_code ec;
    co_await readAll(**client, ec);
    EXPECT_TRUE(ec) << "no tunnel after a refusal";
  });
}

TEST(HboneSession, ResetReachesThePeer) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(200);
    co_await (*client)->response();
    (*client)->reset();
    boost::system::error_code ec;
    co_await readAll(*server, ec);
    EXPECT_EQ(ec, asio::error::connection_reset);
    EXPECT_TRUE(server->wasReset());
  });
}

TEST(HboneSession, SlowReaderStopsTheWriterAtTheWindow) {
  SessionSettings settings;
  settings.stream_window = 64 * 1024;
  settings.stream_send_buffer = 16 * 1024;
  Pair p(settings);
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(200);
    co_await (*client)->response();
    // Given a server that reads nothing, when the client writes 1 MiB,
    // then the write stalls after about window + send buffer bytes.
    size_t written = 0;
    bool writer_done = false;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          std::string chunk(4096, 'x');
          boost::system::error_code ec;
          while (written < (1u << 20) && !ec) {
            co_await (*client)->write(asio::buffer(chunk), ec);
            if (!ec) written += chunk.size();
          }
          writer_done = true;
        },
        asio::detached);
    const bool stalled =
        co_await testing::eventually([&] { return written >= 64 * 1024; }, std::chrono::seconds(5));
    EXPECT_TRUE(stalled);
    // Let the pump settle, then check that no more has gone.
    const size_t at_stall = written;
    for (int i = 0; i < 20; ++i) co_await asio::post(p.io, asio::use_awaitable);
    EXPECT_EQ(written, at_stall);
    EXPECT_LE(written, 64 * 1024 + 16 * 1024 + 2 * 4096);
    EXPECT_FALSE(writer_done);
    // When the server reads, the writer resumes and everything arrives.
    size_t received = 0;
    std::vector<char> buf(65536);
    boost::system::error_code ec;
    while (received < (1u << 20)) {
      received += co_await server->read(asio::buffer(buf), ec);
      EXPECT_FALSE(ec) << ec.message();
      if (ec) break;
    }
    EXPECT_EQ(received, 1u << 20);
    EXPECT_TRUE(co_await testing::eventually([&] { return writer_done; }, std::chrono::seconds(5)));
  });
}

TEST(HboneSession, GracefulShutdownLetsOpenTunnelsFinishAndRefusesNewOnes) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(200);
    EXPECT_EQ(co_await (*client)->response(), 200);
    // When the server shuts down gracefully (its workload was removed),
    p.server->shutdown();
    EXPECT_TRUE(co_await testing::eventually([&] { return !p.client->acceptsNewStreams(); },
                                             std::chrono::seconds(5)))
        << "the client must learn not to open new streams";
    // then the open tunnel still carries bytes both ways.
    boost::system::error_code ec;
    co_await (*client)->write(asio::buffer(std::string("still")), ec);
    (*client)->closeWrite();
    EXPECT_EQ(co_await readAll(*server, ec), "still");
    co_await server->write(asio::buffer(std::string("here")), ec);
    server->closeWrite();
    EXPECT_EQ(co_await readAll(**client, ec), "here");
    EXPECT_EQ(ec, asio::error::eof);
  });
}

TEST(HboneSession, BytesADirectSinkTakesArriveFirstAndTheRestQueuesInOrder) {
  Pair p;
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(200);
    co_await (*client)->response();
    // Given a sink that takes only 3 bytes of what arrives, and a reader waiting,
    std::string sunk;
    server->setSink([&](const uint8_t* data, size_t size) {
      const size_t n = std::min<size_t>(size, 3);
      sunk.append(reinterpret_cast<const char*>(data), n);
      return n;
    });
    std::string queued;
    bool reader_done = false;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          boost::system::error_code ec;
          queued = co_await readAll(*server, ec);
          reader_done = true;
        },
        asio::detached);
    co_await asio::post(p.io, asio::use_awaitable);
    // when the client sends one message and ends,
    boost::system::error_code ec;
    const std::string message = "hello world";
    co_await (*client)->write(asio::buffer(message), ec);
    (*client)->closeWrite();
    // then the sink has the head, read() the tail, and nothing is lost or reordered.
    EXPECT_TRUE(co_await testing::eventually([&] { return reader_done; }, std::chrono::seconds(5)));
    EXPECT_EQ(sunk, "hel");
    EXPECT_EQ(queued, "lo world");
    server->setSink({});
  });
}

TEST(HboneSession, BytesTheSinkTakesReopenTheWindowLikeReads) {
  SessionSettings settings;
  settings.stream_window = 64 * 1024;
  settings.stream_send_buffer = 16 * 1024;
  Pair p(settings);
  testing::runAsync(p.io, [&]() -> asio::awaitable<void> {
    auto client = p.client->connect("198.18.0.2:8080", {});
    auto server = co_await p.nextRequest();
    server->respond(200);
    co_await (*client)->response();
    // Given a sink that takes everything while a reader waits,
    size_t sunk = 0;
    server->setSink([&](const uint8_t*, size_t size) {
      sunk += size;
      return size;
    });
    bool reader_done = false;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          boost::system::error_code ec;
          co_await readAll(*server, ec);
          reader_done = true;
        },
        asio::detached);
    co_await asio::post(p.io, asio::use_awaitable);
    // when the client sends 16 windows' worth,
    std::string chunk(4096, 'x');
    boost::system::error_code ec;
    for (size_t i = 0; i < (1u << 20) / chunk.size() && !ec; ++i)
      co_await (*client)->write(asio::buffer(chunk), ec);
    EXPECT_FALSE(ec) << ec.message();
    (*client)->closeWrite();
    // then it all arrives: the window reopened for the sink's bytes as for read().
    EXPECT_TRUE(co_await testing::eventually([&] { return reader_done; }, std::chrono::seconds(5)));
    EXPECT_EQ(sunk, 1u << 20);
    server->setSink({});
  });
}

TEST(HboneSession, GarbageFromPeerIsAProtocolError) {
  asio::io_context io;
  auto server = Session::create(io.get_executor(), Role::kServer, {}, [](auto) {});
  ASSERT_TRUE(server);
  const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  auto result =
      (*server)->receive({reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()});
  EXPECT_FALSE(result);
  EXPECT_NE(result.message().find("HTTP/2"), std::string::npos);
}

}  // namespace
}  // namespace sluice::h2
