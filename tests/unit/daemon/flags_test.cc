// The daemons' flag table: parsing, errors that name the flag, usage from the table, and the
// shared options with their one convention for "off".
#include "core/daemon/flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/daemon/daemon_options.h"

namespace sluice::daemon {
namespace {

Result<void> parse(const FlagSet& flags, std::vector<std::string> args, bool* help = nullptr) {
  std::vector<const char*> argv{"prog"};
  for (const auto& arg : args) argv.push_back(arg.c_str());
  bool ignored = false;
  return flags.parse(static_cast<int>(argv.size()), argv.data(), help ? *help : ignored);
}

class FlagSetTest : public ::testing::Test {
 protected:
  FlagSetTest() : flags_("prog --name NAME [options]", "Does one thing.") {
    flags_.add("--name", "NAME", "who", assign(name_)).require("--name");
    flags_.add("--count", "N", "how many", number(count_, 1u, 10u), "3");
    flags_.add("--item", "ITEM", "one more item\nrepeatable", [this](std::string_view value) {
      items_.emplace_back(value);
      return success();
    });
    flags_.add("--fast", "", "a switch", [this](std::string_view) {
      fast_ = true;
      return success();
    });
  }

  FlagSet flags_;
  std::string name_;
  unsigned count_ = 0;
  std::vector<std::string> items_;
  bool fast_ = false;
};

TEST_F(FlagSetTest, SetsDefaultsThenTheCommandLineInOrder) {
  auto outcome = parse(flags_, {"--name", "a", "--item", "x", "--fast", "--item", "y"});
  ASSERT_TRUE(outcome) << outcome.message();
  EXPECT_EQ(name_, "a");
  EXPECT_EQ(count_, 3u);
  EXPECT_EQ(items_, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(fast_);
}

TEST_F(FlagSetTest, ErrorsNameTheFlagAndWhatIsWrong) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--name", "a", "--foo", "1"}, "--foo: unknown flag"},
      {{"--name"}, "--name: missing value"},
      {{"--name", "--count", "2"}, "--name: missing value"},
      {{"--name", "a", "--count", "0"}, "--count: expected a number from 1 to 10, got '0'"},
      {{"--name", "a", "--count", "2x"}, "--count: expected a number from 1 to 10, got '2x'"},
      {{"--count", "2"}, "--name is required"},
  };
  for (const auto& [args, message] : cases) {
    auto outcome = parse(flags_, args);
    ASSERT_FALSE(outcome) << message;
    EXPECT_EQ(outcome.message(), message);
  }
}

TEST_F(FlagSetTest, HelpWinsOverMissingFlags) {
  bool help = false;
  auto outcome = parse(flags_, {"--count", "2", "-h"}, &help);
  ASSERT_FALSE(outcome);
  EXPECT_TRUE(help);
  EXPECT_EQ(outcome.message(), flags_.usage());
}

TEST_F(FlagSetTest, UsageListsEveryFlagWithItsValueAndDefault) {
  flags_.note("A closing note.");
  const std::string usage = flags_.usage();
  EXPECT_EQ(usage,
            "usage: prog --name NAME [options]\n"
            "\n"
            "Does one thing.\n"
            "\n"
            "  --name NAME                who\n"
            "  --count N                  how many (default 3)\n"
            "  --item ITEM                one more item\n"
            "                             repeatable\n"
            "  --fast                     a switch\n"
            "  --help                     this text\n"
            "\n"
            "A closing note.\n");
  EXPECT_EQ(flags_.program(), "prog");
}

class SharedFlagsTest : public ::testing::Test {
 protected:
  SharedFlagsTest() : flags_("prog [options]", "Shares.") { addSharedFlags(flags_, options_); }

  FlagSet flags_;
  DaemonOptions options_;
};

TEST_F(SharedFlagsTest, DefaultsAreIstiosPorts) {
  ASSERT_TRUE(parse(flags_, {}));
  ASSERT_TRUE(options_.admin && options_.metrics && options_.readiness);
  EXPECT_EQ(options_.admin->port(), 15000);
  EXPECT_TRUE(options_.admin->address().is_loopback());
  EXPECT_EQ(options_.metrics->port(), 15020);
  EXPECT_EQ(options_.readiness->port(), 15021);
  EXPECT_EQ(options_.access_log, "-");
  EXPECT_EQ(options_.log_level, spdlog::level::info);
  EXPECT_EQ(options_.trust_domain, "cluster.local");
}

TEST_F(SharedFlagsTest, OffTurnsOffAListenerOrTheAccessLog) {
  ASSERT_TRUE(parse(flags_, {"--metrics", "off", "--readiness", "none", "--access-log", "off"}));
  EXPECT_TRUE(options_.admin);
  EXPECT_FALSE(options_.metrics);
  EXPECT_FALSE(options_.readiness);
  EXPECT_EQ(options_.access_log, "");
  ASSERT_TRUE(parse(flags_, {"--no-admin"}));
  EXPECT_FALSE(options_.admin || options_.metrics || options_.readiness);
  EXPECT_NE(flags_.usage().find("'off'"), std::string::npos) << flags_.usage();
}

TEST_F(SharedFlagsTest, UnknownLogLevelIsAnErrorNotSilence) {
  auto outcome = parse(flags_, {"--log-level", "verbose"});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.message(),
            "--log-level: 'verbose' is not one of trace, debug, info, warn, error, critical, off");
  ASSERT_TRUE(parse(flags_, {"--log-level", "warn"}));
  EXPECT_EQ(options_.log_level, spdlog::level::warn);
  ASSERT_TRUE(parse(flags_, {"--log-level", "off"}));
  EXPECT_EQ(options_.log_level, spdlog::level::off);
}

TEST_F(SharedFlagsTest, AdminStaysOnLoopback) {
  auto outcome = parse(flags_, {"--admin", "0.0.0.0:15000"});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.message().rfind("--admin: must be a loopback address", 0), 0u)
      << outcome.message();
  ASSERT_TRUE(parse(flags_, {"--admin", "off"}));
  EXPECT_FALSE(options_.admin);
}

TEST_F(SharedFlagsTest, ADaemonTakesOnlyTheSharedFlagsItChose) {
  FlagSet agent("agent [options]", "Takes two.");
  DaemonOptions options;
  addSharedFlags(agent, options,
                 {.ca_dir = false, .trust_domain = false, .listeners = false, .access_log = false});
  EXPECT_TRUE(parse(agent, {"--config-dir", "c", "--log-level", "debug"}));
  auto outcome = parse(agent, {"--admin", "127.0.0.1:1"});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.message(), "--admin: unknown flag");
  EXPECT_FALSE(options.admin);
}

TEST(ExitAfterFlags, HelpIsZeroAndErrorsAreTwo) {
  testing::internal::CaptureStdout();
  EXPECT_EQ(exitAfterFlags("prog", "usage: prog\n", true), 0);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "usage: prog\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(exitAfterFlags("prog", "--foo: unknown flag", false), 2);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "prog: --foo: unknown flag\nRun 'prog --help' for the list of flags.\n");
}

}  // namespace
}  // namespace sluice::daemon
