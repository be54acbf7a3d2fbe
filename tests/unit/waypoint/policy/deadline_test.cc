// Deadline arithmetic and response flags. Time points are built from a fixed origin.
#include "waypoint/policy/deadline.h"

#include <gtest/gtest.h>

#include "core/telemetry/response_flags.h"

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;
using telemetry::ResponseFlag;
using telemetry::ResponseFlags;

const Clock::time_point kStart = Clock::time_point() + 1000h;

TEST(Deadline, NoTimeoutsMeansNoDeadline) {
  auto d = attemptDeadline({}, kStart, kStart + 3s);
  EXPECT_FALSE(d.at);
  EXPECT_EQ(d.kind, DeadlineKind::kNone);
  EXPECT_FALSE(remainingTime({}, kStart, kStart + 1h));
  EXPECT_FALSE(totalDeadlineExpired({}, kStart, kStart + 1000h));
}

TEST(Deadline, IstioDefaultHasNoRouteTimeout) {
  Timeouts unset;
  EXPECT_EQ(unset.total, 0ms);
  EXPECT_FALSE(requestDeadline(unset, kStart));
}

TEST(Deadline, TotalTimeoutCoversEveryAttempt) {
  Timeouts t{5s, 0ms};
  auto first = attemptDeadline(t, kStart, kStart);
  auto third = attemptDeadline(t, kStart, kStart + 4s);
  EXPECT_EQ(*first.at, kStart + 5s);
  EXPECT_EQ(*third.at, kStart + 5s) << "a later try gets only what is left";
  EXPECT_EQ(third.kind, DeadlineKind::kTotal);
}

TEST(Deadline, PerTryTimeoutCutsAnAttemptShort) {
  Timeouts t{5s, 2s};
  auto d = attemptDeadline(t, kStart, kStart + 1s);
  EXPECT_EQ(*d.at, kStart + 3s);
  EXPECT_EQ(d.kind, DeadlineKind::kPerTry);
}

TEST(Deadline, PerTryTimeoutNeverExtendsTotalDeadline) {
  Timeouts t{5s, 2s};
  auto d = attemptDeadline(t, kStart, kStart + 4s);
  EXPECT_EQ(*d.at, kStart + 5s);
  EXPECT_EQ(d.kind, DeadlineKind::kTotal);
}

TEST(Deadline, TieBetweenPerTryAndTotalIsTheTotal) {
  auto d = attemptDeadline({5s, 2s}, kStart, kStart + 3s);
  EXPECT_EQ(*d.at, kStart + 5s);
  EXPECT_EQ(d.kind, DeadlineKind::kTotal) << "the request ends: no retry after it";
}

TEST(Deadline, PerTryTimeoutAloneBoundsEachAttempt) {
  auto d = attemptDeadline({0ms, 2s}, kStart, kStart + 10s);
  EXPECT_EQ(*d.at, kStart + 12s);
  EXPECT_EQ(d.kind, DeadlineKind::kPerTry);
}

TEST(Deadline, RemainingTimeCountsDownAndStopsAtZero) {
  Timeouts t{5s, 0ms};
  EXPECT_EQ(*remainingTime(t, kStart, kStart + 1500ms), 3500ms);
  EXPECT_EQ(*remainingTime(t, kStart, kStart + 5s), 0ms);
  EXPECT_EQ(*remainingTime(t, kStart, kStart + 9s), 0ms);
}

TEST(Deadline, PartialMillisecondLeftStillCountsAsTimeLeft) {
  EXPECT_EQ(*remainingTime({5s, 0ms}, kStart, kStart + 5s - 1us), 1ms);
}

TEST(Deadline, TotalExpiryEndsTheRequestPerTryExpiryDoesNot) {
  Timeouts t{5s, 2s};
  EXPECT_FALSE(totalDeadlineExpired(t, kStart, kStart + 2s)) << "per-try fired: may retry";
  EXPECT_TRUE(totalDeadlineExpired(t, kStart, kStart + 5s));
  EXPECT_EQ(kTimeoutStatus, 504);
}

TEST(ResponseFlagsTest, ShortNamesAreEnvoys) {
  EXPECT_EQ(shortName(ResponseFlag::kUpstreamRequestTimeout), "UT");
  EXPECT_EQ(shortName(ResponseFlag::kUpstreamConnectionFailure), "UF");
  EXPECT_EQ(shortName(ResponseFlag::kUpstreamRetryLimitExceeded), "URX");
  EXPECT_EQ(shortName(ResponseFlag::kUpstreamOverflow), "UO");
  EXPECT_EQ(shortName(ResponseFlag::kFaultInjected), "FI");
  EXPECT_EQ(shortName(ResponseFlag::kDelayInjected), "DI");
  EXPECT_EQ(shortName(ResponseFlag::kNoRouteFound), "NR");
  EXPECT_EQ(shortName(ResponseFlag::kNoHealthyUpstream), "UH");
  EXPECT_EQ(shortName(ResponseFlag::kUpstreamRemoteReset), "UR");
  EXPECT_EQ(shortName(ResponseFlag::kRbacDenied), "RBAC");
  EXPECT_EQ(shortName(ResponseFlag::kDownstreamConnectionTermination), "DC");
}

TEST(ResponseFlagsTest, EmptySetPrintsDash) { EXPECT_EQ(ResponseFlags().toString(), "-"); }

TEST(ResponseFlagsTest, SeveralFlagsJoinWithCommasInAFixedOrder) {
  ResponseFlags f;
  f.add(ResponseFlag::kUpstreamRequestTimeout).add(ResponseFlag::kDelayInjected);
  EXPECT_EQ(f.toString(), "UT,DI");
  EXPECT_TRUE(f.has(ResponseFlag::kDelayInjected));
  EXPECT_FALSE(f.has(ResponseFlag::kFaultInjected));
}

}  // namespace
}  // namespace sluice::waypoint
