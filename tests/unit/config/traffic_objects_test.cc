// The duration syntax shared by Istio and the Gateway API, and the enumerations' names.
#include <gtest/gtest.h>

#include "core/config/objects.h"

namespace sluice::config {
namespace {

using std::chrono::milliseconds;

TEST(DurationParsing, ReadsGoDurationsAtMillisecondResolution) {
  EXPECT_EQ(parseDuration("5s"), milliseconds(5000));
  EXPECT_EQ(parseDuration("100ms"), milliseconds(100));
  EXPECT_EQ(parseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(parseDuration(".5s"), milliseconds(500));
  EXPECT_EQ(parseDuration("1m"), milliseconds(60'000));
  EXPECT_EQ(parseDuration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parseDuration("1h30m15s"), milliseconds(5'415'000));
  EXPECT_EQ(parseDuration("2000us"), milliseconds(2));
  EXPECT_EQ(parseDuration("3000000ns"), milliseconds(3));
  EXPECT_EQ(parseDuration("0"), milliseconds(0));
  EXPECT_EQ(parseDuration("0s"), milliseconds(0));
}

TEST(DurationParsing, RejectsWhatIsNotAWholeNonNegativeNumberOfMilliseconds) {
  for (const char* text : {"", "5", "s", "-1s", "+1s", "1d", "5 s", " 5s", "5s ", "1.5.5s", "1.5ms",
                           "1500us", "1ns", "1e3ms", "5S", "ms", "1h-5m", "99999999999999h"}) {
    EXPECT_EQ(parseDuration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(DurationParsing, FormatsDurationsSoTheyReadBack) {
  for (int64_t ms : {0, 1, 999, 1000, 1500, 60'000, 86'400'000}) {
    std::string text = formatDuration(milliseconds(ms));
    EXPECT_EQ(parseDuration(text), milliseconds(ms)) << text;
  }
  EXPECT_EQ(formatDuration(milliseconds(5000)), "5s");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1500ms");
}

TEST(TrafficEnumerations, ReadTheirOwnNamesBack) {
  for (LoadBalancer simple :
       {LoadBalancer::kUnspecified, LoadBalancer::kRoundRobin, LoadBalancer::kLeastRequest,
        LoadBalancer::kRandom, LoadBalancer::kPassthrough})
    EXPECT_EQ(parseLoadBalancer(toString(simple)), simple);
  EXPECT_EQ(parseLoadBalancer("LEAST_CONN"), LoadBalancer::kLeastRequest);
  EXPECT_EQ(parseLoadBalancer("round_robin"), std::nullopt);
  for (AuthorizationAction action : {AuthorizationAction::kAllow, AuthorizationAction::kDeny,
                                     AuthorizationAction::kAudit, AuthorizationAction::kCustom})
    EXPECT_EQ(parseAuthorizationAction(toString(action)), action);
  EXPECT_EQ(parseAuthorizationAction("allow"), std::nullopt);
}

}  // namespace
}  // namespace sluice::config
