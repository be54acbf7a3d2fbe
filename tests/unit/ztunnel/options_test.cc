// Command-line options: clear errors for bad input, safe defaults.
#include "ztunnel/options.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::ztunnel {
namespace {

Result<Options> parse(std::vector<std::string> args, bool* help = nullptr) {
  std::vector<char*> argv{const_cast<char*>("sluice-ztunnel")};
  for (auto& arg : args) argv.push_back(arg.data());
  bool ignored = false;
  return parseOptions(static_cast<int>(argv.size()), argv.data(), help ? *help : ignored);
}

TEST(ZtunnelOptions, RequiresNodeConfigAndCa) {
  auto missing = parse({"--config-dir", "c", "--ca-dir", "ca"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("--node is required"), std::string::npos);
}

TEST(ZtunnelOptions, DefaultsMatchIstioPorts) {
  auto options = parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca"});
  ASSERT_TRUE(options) << options.message();
  EXPECT_EQ(options->hbone_port, 15008);
  EXPECT_EQ(options->inbound_plaintext_port, 15006);
  EXPECT_EQ(options->admin->port(), 15000);
  EXPECT_TRUE(options->admin->address().is_loopback());
  EXPECT_EQ(options->metrics->port(), 15020);
  EXPECT_EQ(options->readiness->port(), 15021);
}

TEST(ZtunnelOptions, ParsesOutboundListeners) {
  auto options =
      parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--outbound",
             "demo/client=127.0.0.1:0,198.19.0.10:80", "--outbound", "demo/other=[::1]:15001"});
  ASSERT_TRUE(options) << options.message();
  ASSERT_EQ(options->outbound.size(), 2u);
  EXPECT_EQ(options->outbound[0].ns, "demo");
  EXPECT_EQ(options->outbound[0].pod, "client");
  EXPECT_EQ(options->outbound[0].listen.port(), 0);
  EXPECT_EQ(options->outbound[0].destination->port(), 80);
  EXPECT_FALSE(options->outbound[1].destination);
}

TEST(ZtunnelOptions, RejectsBadValuesNamingTheFlag) {
  const std::vector<std::vector<std::string>> bad = {{"--hbone-port", "99999"},
                                                     {"--outbound", "client=127.0.0.1:1"},
                                                     {"--outbound", "a/b=host:80"},
                                                     {"--admin", "0.0.0.0:15000"},
                                                     {"--workers", "0"},
                                                     {"--bogus", "1"},
                                                     {"--metrics", "1.2.3.4"}};
  for (const auto& extra : bad) {
    std::vector<std::string> args{"--node", "n", "--config-dir", "c", "--ca-dir", "ca"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto result = parse(args);
    EXPECT_FALSE(result) << extra[0] << " " << extra[1];
    if (!result) {
      EXPECT_NE(result.message().find(extra[0]), std::string::npos) << result.message();
    }
  }
}

TEST(ZtunnelOptions, UnknownLogLevelIsAnErrorNotSilence) {
  // Before the flag table, "verbose" was taken as is and spdlog read it as "off".
  auto result =
      parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--log-level", "verbose"});
  ASSERT_FALSE(result);
  EXPECT_NE(result.message().find("--log-level: 'verbose' is not one of trace, debug, info"),
            std::string::npos)
      << result.message();
  auto warn = parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--log-level", "warn"});
  ASSERT_TRUE(warn) << warn.message();
  EXPECT_EQ(warn->log_level, spdlog::level::warn);
}

TEST(ZtunnelOptions, NoAdminAndOffTurnListenersOff) {
  auto none = parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--no-admin"});
  ASSERT_TRUE(none) << none.message();
  EXPECT_FALSE(none->admin || none->metrics || none->readiness);
  auto some = parse({"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--metrics", "off",
                     "--access-log", "none"});
  ASSERT_TRUE(some) << some.message();
  EXPECT_TRUE(some->admin);
  EXPECT_FALSE(some->metrics);
  EXPECT_EQ(some->access_log, "");
}

TEST(ZtunnelOptions, InPodSocketsCarryTheCaptureMark) {
  auto inpod = parse(
      {"--node", "n", "--config-dir", "c", "--ca-dir", "ca", "--inpod-socket", "/run/agent.sock"});
  ASSERT_TRUE(inpod) << inpod.message();
  EXPECT_EQ(inpod->socket_mark, 1337u);
}

TEST(ZtunnelOptions, HelpIsNotAnError) {
  bool help = false;
  auto result = parse({"--help"}, &help);
  EXPECT_TRUE(help);
  EXPECT_NE(result.message().find("usage: sluice-ztunnel"), std::string::npos);
}

}  // namespace
}  // namespace sluice::ztunnel
