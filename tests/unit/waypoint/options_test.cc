// The waypoint's command-line options: its own flags and the shared ones.
#include "waypoint/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::waypoint {
namespace {

Result<WaypointOptions> parse(std::vector<std::string> extra, bool* help = nullptr) {
  std::vector<std::string> args{
      "sluice-waypoint", "--name", "wp", "--namespace", "shop", "--ca-dir", "ca",
      "--config-dir",    "c"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  bool ignored = false;
  return parseWaypointOptions(static_cast<int>(argv.size()), argv.data(), help ? *help : ignored);
}

TEST(WaypointOptions, DefaultsFollowIstio) {
  auto options = parse({});
  ASSERT_TRUE(options) << options.message();
  EXPECT_EQ(options->service_account, "wp");
  EXPECT_EQ(options->hbone.port(), 15008);
  EXPECT_EQ(options->admin->port(), 15000);
  EXPECT_EQ(options->metrics->port(), 15020);
  EXPECT_EQ(options->readiness->port(), 15021);
  EXPECT_EQ(options->connect_timeout, std::chrono::milliseconds(10000));
}

TEST(WaypointOptions, ParsesPlainListenersAndNoneListeners) {
  auto options = parse({"--plain", "127.0.0.1:0=198.19.0.10:80", "--metrics", "none", "--readiness",
                        "none", "--access-log", "none"});
  ASSERT_TRUE(options) << options.message();
  ASSERT_EQ(options->plain.size(), 1u);
  EXPECT_EQ(options->plain[0].vip.port(), 80);
  EXPECT_FALSE(options->metrics);
  EXPECT_FALSE(options->readiness);
  EXPECT_EQ(options->access_log, "");
}

TEST(WaypointOptions, RejectsBadValuesNamingTheFlag) {
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--plain", "127.0.0.1:0"},
                                                               {"--connect-timeout", "0"},
                                                               {"--admin", "0.0.0.0:1"},
                                                               {"--log-level", "verbose"},
                                                               {"--bogus", "1"}}) {
    auto result = parse(bad);
    ASSERT_FALSE(result) << bad[0];
    EXPECT_EQ(result.message().rfind(bad[0] + ":", 0), 0u) << result.message();
  }
}

TEST(WaypointOptions, HelpIsNotAnError) {
  bool help = false;
  auto result = parse({"--help"}, &help);
  EXPECT_TRUE(help);
  EXPECT_NE(result.message().find("usage: sluice-waypoint"), std::string::npos);
}

}  // namespace
}  // namespace sluice::waypoint
