// The connection pool over real mTLS on 127.0.0.1: reuse, the per-connection stream limit,
// dial coalescing, idle close and dial errors.
#include "core/hbone/pool.h"

#include <gtest/gtest.h>

#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/hbone/server.h"
#include "core/identity/ca.h"
#include "core/identity/tls.h"
#include "support/async_test.h"

namespace sluice::hbone {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

identity::SpiffeId id(const char* sa) {
  return identity::SpiffeId::forWorkload("cluster.local", "demo", sa).value();
}

std::shared_ptr<asio::ssl::context> context(const identity::CertificateAuthority& ca,
                                            const identity::SpiffeId& who, bool server) {
  auto cert = ca.issue(who).value();
  auto ctx = server ? identity::serverContext(*cert) : identity::clientContext(*cert);
  return std::make_shared<asio::ssl::context>(ctx.value().release());
}

class PoolTest : public ::testing::Test {
 protected:
  PoolTest() : ca_(identity::CertificateAuthority::generate("cluster.local").value()) {
    server_tls_ = context(ca_, id("server"), true);
    client_tls_ = context(ca_, id("client"), false);
    // The server holds every tunnel open until the test ends it.
    auto server = Server::create(
        io_.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
        [this] { return server_tls_; },
        [this](std::shared_ptr<h2::Stream> stream, InboundContext) -> asio::awaitable<void> {
          stream->respond(200);
          streams_.push_back(stream);
          co_return;
        });
    server_ = std::move(server.value());
    server_->start();
  }
  ~PoolTest() override {
    if (pool_) pool_->closeAll();
    server_->stop();
  }

  void makePool(PoolOptions options = {}) {
    pool_ = std::make_unique<Pool>(
        io_.get_executor(),
        [this](const PoolKey& key) -> asio::awaitable<Result<std::shared_ptr<Connection>>> {
          ++dials_;
          std::vector<identity::SpiffeId> expected{key.destination};
          co_return co_await dial(io_.get_executor(), key.address, client_tls_, std::move(expected),
                                  DialOptions{});
        },
        options);
  }

  PoolKey key(const char* destination = "server") const {
    return {id("client"), id(destination), server_->localEndpoint()};
  }

  asio::awaitable<std::shared_ptr<h2::Stream>> open(PoolKey k) {
    auto stream = co_await pool_->open(k, "198.18.0.2:8080", {});
    EXPECT_TRUE(stream) << (stream ? "" : stream.message());
    if (!stream) co_return nullptr;
    EXPECT_EQ(co_await (*stream)->response(), 200);
    co_return *stream;
  }

  asio::io_context io_;
  identity::CertificateAuthority ca_;
  std::shared_ptr<asio::ssl::context> server_tls_, client_tls_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Pool> pool_;
  std::vector<std::shared_ptr<h2::Stream>> streams_;
  int dials_ = 0;
};

TEST_F(PoolTest, SequentialStreamsReuseOneConnection) {
  makePool();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      auto stream = co_await open(key());
      stream->reset();
    }
    EXPECT_EQ(dials_, 1);
    EXPECT_EQ(pool_->connectionCount(), 1u);
  });
}

TEST_F(PoolTest, ConcurrentOpensShareDialsAndRespectTheStreamLimit) {
  makePool();
  testing::runAsync(
      io_,
      [&]() -> asio::awaitable<void> {
        // Given 150 callers at once, when each opens a stream,
        // then two connections carry them (100 + 50), and nobody dialled a third.
        int opened = 0;
        std::vector<std::shared_ptr<h2::Stream>> held;
        for (int i = 0; i < 150; ++i) {
          asio::co_spawn(
              io_,
              [&]() -> asio::awaitable<void> {
                auto stream = co_await open(key());
                if (stream) held.push_back(stream);
                ++opened;
              },
              asio::detached);
        }
        EXPECT_TRUE(
            co_await testing::eventually([&] { return opened == 150; }, std::chrono::seconds(20)));
        EXPECT_EQ(held.size(), 150u);
        EXPECT_EQ(pool_->connectionCount(), 2u);
        EXPECT_EQ(dials_, 2);
      },
      std::chrono::seconds(60));
}

TEST_F(PoolTest, IdleConnectionsCloseAfterTheIdleTimeout) {
  PoolOptions options;
  options.idle_timeout = std::chrono::milliseconds(100);
  makePool(options);
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    auto stream = co_await open(key());
    EXPECT_EQ(pool_->connectionCount(), 1u);
    // Busy connections stay, however long.
    asio::steady_timer wait(io_, std::chrono::milliseconds(300));
    co_await wait.async_wait(asio::use_awaitable);
    EXPECT_EQ(pool_->connectionCount(), 1u) << "a connection with an open stream was closed";
    stream->reset();
    EXPECT_TRUE(co_await testing::eventually([&] { return pool_->connectionCount() == 0; },
                                             std::chrono::seconds(5)));
  });
}

TEST_F(PoolTest, DifferentDestinationIdentitiesNeverShareAConnection) {
  makePool();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    auto first = co_await open(key("server"));
    // The server's certificate says "server": a key expecting "other" must dial and fail.
    auto other = co_await pool_->open(key("other"), "198.18.0.2:8080", {});
    EXPECT_FALSE(other);
    if (!other) {
      EXPECT_NE(other.message().find("spiffe://cluster.local/ns/demo/sa/server"), std::string::npos)
          << other.message();
    }
    EXPECT_EQ(dials_, 2);
  });
}

TEST_F(PoolTest, DialFailureReachesEveryWaiter) {
  makePool();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    // A port nobody listens on: bind one, then close it.
    tcp::acceptor probe(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    PoolKey dead{id("client"), id("server"), probe.local_endpoint()};
    probe.close();
    int failed = 0;
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(
          io_,
          [&]() -> asio::awaitable<void> {
            auto stream = co_await pool_->open(dead, "198.18.0.2:8080", {});
            if (!stream && stream.message().find("15008") != std::string::npos) ++failed;
          },
          asio::detached);
    }
    EXPECT_TRUE(
        co_await testing::eventually([&] { return failed == 3; }, std::chrono::seconds(10)));
    EXPECT_EQ(dials_, 1) << "waiters share the one dial";
  });
}

}  // namespace
}  // namespace sluice::hbone
