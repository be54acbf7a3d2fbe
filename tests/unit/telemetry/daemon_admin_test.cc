// The daemons' admin, metrics and readiness servers: which paths each serves, and what.
#include "core/admin/daemon_admin.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <exception>

#include "core/telemetry/metrics.h"
#include "unit/telemetry/http_client.h"

namespace sluice::admin {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using http_client::fetch;
using http_client::Reply;
using namespace std::chrono_literals;

class DaemonAdminTest : public ::testing::Test {
 protected:
  void start(DaemonAdminOptions options) {
    auto started = DaemonAdmin::start(ioc_.get_executor(), options, metrics_, ready_,
                                      [] { return std::string(R"({"dump":true})"); });
    ASSERT_TRUE(started) << started.message();
    admin_ = std::move(*started);
  }

  // GETs each path from `where` on the servers' io_context; the deadline turns a hang into a
  // failure, it is not a synchronisation.
  std::vector<Reply> get(tcp::endpoint where, std::vector<std::string> paths) {
    std::vector<Reply> replies;
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          for (const auto& path : paths)
            replies.push_back(co_await fetch(where, http::verb::get, path));
        },
        [&](std::exception_ptr e) {
          done = true;
          error = e;
        });
    ioc_.restart();
    while (!done && ioc_.run_one_for(10s) > 0) {
    }
    EXPECT_TRUE(done) << "the client did not finish within the deadline";
    if (error) std::rethrow_exception(error);
    return replies;
  }

  static tcp::endpoint loopback() { return {asio::ip::make_address("127.0.0.1"), 0}; }

  asio::io_context ioc_;
  telemetry::Metrics metrics_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<DaemonAdmin> admin_;
};

TEST_F(DaemonAdminTest, EachServerAnswersItsOwnPaths) {
  start({loopback(), loopback(), loopback(), {"/metrics", "/stats/prometheus"}});
  ready_ = true;
  const auto admin = get(*admin_->adminEndpoint(),
                         {"/config_dump", "/metrics", "/stats/prometheus", "/healthz/ready"});
  ASSERT_EQ(admin.size(), 4u);
  EXPECT_EQ(admin[0].status, 200u);
  EXPECT_EQ(admin[0].body, R"({"dump":true})");
  EXPECT_EQ(admin[0].content_type, "application/json");
  EXPECT_EQ(admin[1].content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(admin[1].body, metrics_.serialize());
  EXPECT_EQ(admin[2].body, admin[1].body);
  EXPECT_EQ(admin[3].body, "ready\n");

  const auto metrics = get(*admin_->metricsEndpoint(), {"/metrics", "/config_dump"});
  EXPECT_EQ(metrics[0].status, 200u);
  EXPECT_EQ(metrics[1].status, 404u) << "the config dump is for loopback only";

  const auto readiness = get(*admin_->readinessEndpoint(), {"/healthz/ready", "/metrics"});
  EXPECT_EQ(readiness[0].status, 200u);
  EXPECT_EQ(readiness[1].status, 404u);
}

TEST_F(DaemonAdminTest, NotReadyIs503) {
  start({std::nullopt, std::nullopt, loopback()});
  const auto replies = get(*admin_->readinessEndpoint(), {"/healthz/ready"});
  EXPECT_EQ(replies[0].status, 503u);
  EXPECT_EQ(replies[0].body, "not ready\n");
}

TEST_F(DaemonAdminTest, UnsetServersAreNotRun) {
  start({std::nullopt, loopback(), std::nullopt});
  EXPECT_FALSE(admin_->adminEndpoint());
  EXPECT_TRUE(admin_->metricsEndpoint());
  EXPECT_FALSE(admin_->readinessEndpoint());
}

TEST_F(DaemonAdminTest, ATakenPortNamesTheServer) {
  start({std::nullopt, loopback(), std::nullopt});
  auto second = DaemonAdmin::start(ioc_.get_executor(),
                                   {std::nullopt, std::nullopt, *admin_->metricsEndpoint()},
                                   metrics_, ready_, [] { return std::string(); });
  ASSERT_FALSE(second);
  EXPECT_EQ(second.message().rfind("readiness: ", 0), 0u) << second.message();
}

}  // namespace
}  // namespace sluice::admin
