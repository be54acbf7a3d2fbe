#include "core/admin/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <string>

#include "unit/telemetry/http_client.h"

namespace sluice::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using namespace std::chrono_literals;
using http_client::fetch;
using http_client::Reply;
using http_client::request;

// What a raw client saw: everything the server sent until it closed the connection.
struct RawResult {
  std::string received;
  boost::system::error_code end;  // eof for an orderly close
};

asio::awaitable<RawResult> readUntilClosed(tcp::socket& socket) {
  RawResult result;
  auto [ec, n] = co_await asio::async_read(socket, asio::dynamic_buffer(result.received),
                                           asio::as_tuple(use_awaitable));
  result.end = ec;
  co_return result;
}

asio::awaitable<tcp::socket> connectAndSend(tcp::endpoint ep, std::string bytes) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(ep, use_awaitable);
  co_await asio::async_write(socket, asio::buffer(bytes), use_awaitable);
  co_return socket;
}

class HttpServerTest : public testing::Test {
 protected:
  void startServer(HttpServer::Limits limits = {}) {
    std::vector<HttpServer::Route> routes;
    routes.push_back({"/healthz/ready", "text/plain", [this](std::string_view target) {
                        ++ready_calls_;
                        last_target_ = std::string(target);
                        return std::pair<unsigned, std::string>{200, "ready\n"};
                      }});
    routes.push_back({"/stats/prometheus", "text/plain; version=0.0.4", [](std::string_view) {
                        return std::pair<unsigned, std::string>{200, "istio_up 1\n"};
                      }});
    routes.push_back({"/unready", "text/plain", [](std::string_view) {
                        return std::pair<unsigned, std::string>{503, "not ready\n"};
                      }});
    auto server = HttpServer::create(ioc_.get_executor(),
                                     tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
                                     std::move(routes), limits);
    ASSERT_TRUE(server.ok()) << server.message();
    server_ = std::move(*server);
    server_->start();
    endpoint_ = server_->localEndpoint();
  }

  // Runs the test's client coroutine on the server's io_context, then stops the server. The
  // deadline turns a hang into a failure instead of a stuck suite; it is not a synchronisation.
  void run(asio::awaitable<void> client) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(ioc_, std::move(client), [&](std::exception_ptr e) {
      done = true;
      error = e;
      server_->stop();
    });
    ioc_.run_for(10s);
    ASSERT_TRUE(done) << "the client did not finish within the deadline";
    if (error) std::rethrow_exception(error);
  }

  asio::io_context ioc_;
  std::unique_ptr<HttpServer> server_;
  tcp::endpoint endpoint_;
  int ready_calls_ = 0;
  std::string last_target_;
};

TEST_F(HttpServerTest, AnswersEachRouteWithItsStatusBodyAndContentType) {
  startServer();
  Reply ready, metrics, unready;

  run([&]() -> asio::awaitable<void> {
    ready = co_await fetch(endpoint_, http::verb::get, "/healthz/ready");
    metrics = co_await fetch(endpoint_, http::verb::get, "/stats/prometheus");
    unready = co_await fetch(endpoint_, http::verb::get, "/unready");
  }());

  EXPECT_EQ(ready.status, 200u);
  EXPECT_EQ(ready.body, "ready\n");
  EXPECT_EQ(ready.content_type, "text/plain");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.body, "istio_up 1\n");
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(unready.status, 503u);
  EXPECT_EQ(unready.body, "not ready\n");
}

TEST_F(HttpServerTest, MatchesThePathAndHandsTheQueryToTheHandler) {
  startServer();
  Reply reply;

  run([&]() -> asio::awaitable<void> {
    reply = co_await fetch(endpoint_, http::verb::get, "/healthz/ready?verbose=1");
  }());

  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(last_target_, "/healthz/ready?verbose=1");
}

TEST_F(HttpServerTest, ServesSeveralRequestsOnOneKeepAliveConnection) {
  startServer();
  std::vector<Reply> replies;

  run([&]() -> asio::awaitable<void> {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(endpoint_, use_awaitable);
    for (int i = 0; i < 3; ++i) {
      replies.push_back(co_await request(stream, http::verb::get, "/healthz/ready"));
    }
  }());

  ASSERT_EQ(replies.size(), 3u);
  for (const Reply& r : replies) {
    EXPECT_EQ(r.status, 200u);
    EXPECT_TRUE(r.keep_alive);
  }
  EXPECT_EQ(ready_calls_, 3);
}

TEST_F(HttpServerTest, Returns404ForAnUnknownPath) {
  startServer();
  Reply reply;

  run([&]() -> asio::awaitable<void> {
    reply = co_await fetch(endpoint_, http::verb::get, "/healthz/ready/extra");
  }());

  EXPECT_EQ(reply.status, 404u);
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, Returns405ForMethodsOtherThanGet) {
  startServer();
  Reply post, del;

  run([&]() -> asio::awaitable<void> {
    post = co_await fetch(endpoint_, http::verb::post, "/healthz/ready");
    del = co_await fetch(endpoint_, http::verb::delete_, "/healthz/ready");
  }());

  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(post.allow, "GET");
  EXPECT_EQ(del.status, 405u);
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, RejectsAnOversizeHeaderAndClosesTheConnection) {
  startServer();
  RawResult result;

  run([&]() -> asio::awaitable<void> {
    // A 16 KiB header, twice the limit, on an otherwise valid request for a real route.
    std::string req =
        "GET /healthz/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'a') +
        "\r\n\r\n";
    tcp::socket socket = co_await connectAndSend(endpoint_, std::move(req));
    result = co_await readUntilClosed(socket);
  }());

  EXPECT_THAT(result.received, testing::StartsWith("HTTP/1.1 431 "));
  EXPECT_EQ(result.end, asio::error::eof);
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, AcceptsAHeaderJustUnderTheLimit) {
  startServer();
  Reply reply;

  run([&]() -> asio::awaitable<void> {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(endpoint_, use_awaitable);
    http::request<http::string_body> req{http::verb::get, "/healthz/ready", 11};
    req.set(http::field::host, "x");
    req.set("X-Big", std::string(7 * 1024, 'a'));
    co_await http::async_write(stream, req, use_awaitable);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, use_awaitable);
    reply.status = res.result_int();
  }());

  EXPECT_EQ(reply.status, 200u);
}

TEST_F(HttpServerTest, HonoursAConfiguredHeaderLimit) {
  HttpServer::Limits limits;
  limits.header_limit = 1024;
  startServer(limits);
  RawResult result;

  run([&]() -> asio::awaitable<void> {
    std::string req =
        "GET /healthz/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2 * 1024, 'a') +
        "\r\n\r\n";
    tcp::socket socket = co_await connectAndSend(endpoint_, std::move(req));
    result = co_await readUntilClosed(socket);
  }());

  EXPECT_THAT(result.received, testing::StartsWith("HTTP/1.1 431 "));
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, AnswersAMalformedRequestWith400AndCloses) {
  startServer();
  RawResult result;

  run([&]() -> asio::awaitable<void> {
    tcp::socket socket =
        co_await connectAndSend(endpoint_, "GET /healthz/ready HTTP/1.1\r\nHost x\r\n\r\n");
    result = co_await readUntilClosed(socket);
  }());

  EXPECT_THAT(result.received, testing::StartsWith("HTTP/1.1 400 "));
  EXPECT_EQ(result.end, asio::error::eof);
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, AClientStalledMidRequestDoesNotBlockOthers) {
  startServer();
  Reply reply;
  bool stalled_got_nothing = false;

  run([&]() -> asio::awaitable<void> {
    // Given a client that sent half a request and went quiet
    tcp::socket stalled =
        co_await connectAndSend(endpoint_, "GET /healthz/ready HTTP/1.1\r\nHost: x\r\n");
    // When another client asks
    reply = co_await fetch(endpoint_, http::verb::get, "/healthz/ready");
    // Then it is answered, and the stalled one still has nothing
    stalled_got_nothing = stalled.available() == 0;
  }());

  EXPECT_EQ(reply.status, 200u);
  EXPECT_TRUE(stalled_got_nothing);
  EXPECT_EQ(ready_calls_, 1);
}

TEST_F(HttpServerTest, ClosesAClientThatStallsPastTheReadTimeout) {
  HttpServer::Limits limits;
  limits.read_timeout = 200ms;
  startServer(limits);
  RawResult result;

  run([&]() -> asio::awaitable<void> {
    tcp::socket stalled =
        co_await connectAndSend(endpoint_, "GET /healthz/ready HTTP/1.1\r\nHost: x\r\n");
    result = co_await readUntilClosed(stalled);
  }());

  EXPECT_EQ(result.received, "");
  EXPECT_TRUE(result.end == asio::error::eof || result.end == asio::error::connection_reset)
      << result.end.message();
  EXPECT_EQ(ready_calls_, 0);
}

TEST_F(HttpServerTest, ShedsConnectionsBeyondTheLimit) {
  HttpServer::Limits limits;
  limits.max_connections = 1;
  startServer(limits);
  RawResult shed;
  Reply after;

  run([&]() -> asio::awaitable<void> {
    // Given one connection holding the only slot
    tcp::socket holder =
        co_await connectAndSend(endpoint_, "GET /healthz/ready HTTP/1.1\r\nHost: x\r\n");
    // When a second one arrives, it is closed unanswered
    tcp::socket second = co_await connectAndSend(endpoint_, "GET /healthz/ready HTTP/1.1\r\n\r\n");
    shed = co_await readUntilClosed(second);
    // and once the first leaves, the slot is free again
    holder.close();
    for (int attempt = 0; attempt < 100 && after.status == 0; ++attempt) {
      try {
        after = co_await fetch(endpoint_, http::verb::get, "/healthz/ready");
      } catch (const boost::system::system_error&) {
        // the server may not have noticed the close yet; it is seen on its next read
      }
    }
  }());

  EXPECT_EQ(shed.received, "");
  EXPECT_EQ(after.status, 200u);
}

TEST_F(HttpServerTest, StopClosesOpenConnectionsAndCallsNoMoreHandlers) {
  startServer();
  RawResult result;
  int calls_at_stop = -1;

  run([&]() -> asio::awaitable<void> {
    // Given a kept-alive connection that has been served once
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    co_await stream.async_connect(endpoint_, use_awaitable);
    co_await request(stream, http::verb::get, "/healthz/ready");
    // When the server stops
    server_->stop();
    calls_at_stop = ready_calls_;
    // Then the connection is closed by the server
    result = co_await readUntilClosed(stream.socket());
    // and a new connection is refused
    tcp::socket late(co_await asio::this_coro::executor);
    auto [ec] = co_await late.async_connect(endpoint_, asio::as_tuple(use_awaitable));
    EXPECT_EQ(ec, asio::error::connection_refused);
  }());

  EXPECT_EQ(result.received, "");
  EXPECT_EQ(result.end, asio::error::eof);
  EXPECT_EQ(calls_at_stop, 1);
  EXPECT_EQ(ready_calls_, 1);
}

TEST(HttpServerCreate, FailsNamingTheAddressWhenThePortIsTaken) {
  asio::io_context ioc;
  auto first = HttpServer::create(ioc.get_executor(),
                                  tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), {});
  ASSERT_TRUE(first.ok()) << first.message();
  const tcp::endpoint taken = (*first)->localEndpoint();

  auto second = HttpServer::create(ioc.get_executor(), taken, {});

  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.message(), testing::HasSubstr("127.0.0.1:" + std::to_string(taken.port())));
}

TEST(HttpServerCreate, RejectsARouteWithoutAHandler) {
  asio::io_context ioc;
  std::vector<HttpServer::Route> routes{{"/ready", "text/plain", nullptr}};

  auto server = HttpServer::create(
      ioc.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), std::move(routes));

  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.message(), testing::HasSubstr("/ready"));
}

}  // namespace
}  // namespace sluice::admin
