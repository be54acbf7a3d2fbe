// The pure "would retry?" decision, retryOn parsing, Istio defaults and backoff.
#include "waypoint/policy/retry_policy.h"

#include <gtest/gtest.h>

#include <random>

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;

RetryPolicy policy(const char* retry_on, uint32_t attempts) {
  auto p = retryPolicyFrom(RetrySpec{attempts, std::nullopt, std::string(retry_on)});
  EXPECT_TRUE(p.ok()) << p.message();
  return *p;
}

// The decision with plenty of time, a replayable body and an idle budget.
RetryDecision decide(const RetryPolicy& p, const AttemptOutcome& o, uint32_t attempts_made) {
  static const RetryBudget idle;
  return wouldRetry(p, o, attempts_made, std::nullopt, true, idle);
}

TEST(RetryPolicyDefaults, NoRetriesBlockGivesIstioDefault) {
  auto p = retryPolicyFrom(std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->attempts, 2u);
  EXPECT_TRUE(p->has(RetryOn::kConnectFailure));
  EXPECT_TRUE(p->has(RetryOn::kRefusedStream));
  EXPECT_TRUE(p->has(RetryOn::kUnavailable));
  EXPECT_TRUE(p->has(RetryOn::kCancelled));
  EXPECT_TRUE(p->has(RetryOn::kRetriableStatusCodes));
  EXPECT_FALSE(p->has(RetryOn::k5xx));
  EXPECT_EQ(p->retriable_status_codes, std::vector<int>{503});
  EXPECT_EQ(p->per_try_timeout, 0ms);
}

TEST(RetryPolicyDefaults, DefaultRetries503ButNot500) {
  auto p = RetryPolicy::istioDefault();
  EXPECT_TRUE(decide(p, AttemptOutcome::response(503), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(500), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::connectFailure(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::reset(), 1).retry);
}

TEST(RetryPolicyDefaults, AttemptsOnlyKeepsDefaultRetryOn) {
  auto p = retryPolicyFrom(RetrySpec{5, std::nullopt, std::nullopt});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->attempts, 5u);
  EXPECT_EQ(p->retry_on, RetryPolicy::istioDefault().retry_on);
}

TEST(RetryPolicyDefaults, RetryOnReplacesTheDefaultStatusCodes) {
  auto p = policy("5xx", 3);
  EXPECT_TRUE(p.retriable_status_codes.empty());
  EXPECT_FALSE(p.has(RetryOn::kConnectFailure));
}

TEST(RetryPolicyDefaults, PerTryTimeoutIsCarried) {
  auto p = retryPolicyFrom(RetrySpec{3, Duration(2000), std::string("5xx")});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->per_try_timeout, 2s);
}

TEST(RetryOnParsing, TokensAndStatusCodes) {
  auto parsed = parseRetryOn("5xx, gateway-error,409 ,reset");
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(parsed->status_codes, std::vector<int>{409});
  EXPECT_TRUE(parsed->bits & static_cast<uint32_t>(RetryOn::kRetriableStatusCodes));
  EXPECT_TRUE(parsed->bits & static_cast<uint32_t>(RetryOn::kReset));
}

TEST(RetryOnParsing, UnknownTokenIsAnErrorThatNamesIt) {
  auto parsed = parseRetryOn("5xx,retry-everything");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.message().find("retry-everything"), std::string::npos);
}

TEST(RetryOnParsing, OutOfRangeStatusCodeIsAnError) {
  EXPECT_FALSE(parseRetryOn("700").ok());
  EXPECT_FALSE(parseRetryOn("50x").ok());
}

TEST(RetryOnParsing, EmptyEntriesAreIgnored) {
  auto parsed = parseRetryOn("5xx,,");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->bits, static_cast<uint32_t>(RetryOn::k5xx));
}

TEST(RetryOnParsing, NegativePerTryTimeoutIsAnError) {
  EXPECT_FALSE(retryPolicyFrom(RetrySpec{1, Duration(-1), std::nullopt}).ok());
}

TEST(WouldRetry, RetriesOn503UpToAttempts) {
  auto p = policy("5xx", 3);
  auto o = AttemptOutcome::response(503);
  EXPECT_TRUE(decide(p, o, 1).retry);
  EXPECT_TRUE(decide(p, o, 2).retry);
  EXPECT_TRUE(decide(p, o, 3).retry);
  auto last = decide(p, o, 4);
  EXPECT_FALSE(last.retry);
  EXPECT_EQ(last.reason, RetryReason::kAttemptsExhausted);
}

TEST(WouldRetry, ExhaustedRetriesReportURX) {
  auto d = decide(policy("5xx", 1), AttemptOutcome::response(502), 2);
  EXPECT_TRUE(d.flags.has(telemetry::ResponseFlag::kUpstreamRetryLimitExceeded));
  EXPECT_EQ(d.flags.toString(), "URX");
}

TEST(WouldRetry, AttemptsZeroDisablesRetries) {
  auto d = decide(policy("5xx", 0), AttemptOutcome::response(503), 1);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, RetryReason::kDisabled);
  EXPECT_TRUE(d.flags.empty()) << "no URX when retries were never on";
}

TEST(WouldRetry, SuccessIsNeverRetried) {
  auto d = decide(policy("5xx,retriable-4xx", 3), AttemptOutcome::response(200), 1);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, RetryReason::kNotRetriable);
}

TEST(WouldRetry, FiveXxCoversEveryServerErrorAndNoResponse) {
  auto p = policy("5xx", 1);
  for (int s : {500, 501, 502, 503, 504, 599})
    EXPECT_TRUE(decide(p, AttemptOutcome::response(s), 1).retry) << s;
  EXPECT_FALSE(decide(p, AttemptOutcome::response(404), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::reset(), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::connectFailure(), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::refusedStream(), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::perTryTimeout(), 1).retry);
}

TEST(WouldRetry, GatewayErrorCovers502To504Only) {
  auto p = policy("gateway-error", 1);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(500), 1).retry);
  for (int s : {502, 503, 504}) EXPECT_TRUE(decide(p, AttemptOutcome::response(s), 1).retry) << s;
  EXPECT_TRUE(decide(p, AttemptOutcome::perTryTimeout(), 1).retry);
}

TEST(WouldRetry, ResetCoversNoResponseButNotAnErrorResponse) {
  auto p = policy("reset", 1);
  EXPECT_TRUE(decide(p, AttemptOutcome::reset(), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::perTryTimeout(), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::connectFailure(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(503), 1).retry);
}

TEST(WouldRetry, ConnectFailureCoversOnlyConnectFailures) {
  auto p = policy("connect-failure", 1);
  EXPECT_TRUE(decide(p, AttemptOutcome::connectFailure(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::reset(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::refusedStream(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::perTryTimeout(), 1).retry);
}

TEST(WouldRetry, RefusedStreamCoversOnlyRefusedStreams) {
  auto p = policy("refused-stream", 1);
  EXPECT_TRUE(decide(p, AttemptOutcome::refusedStream(), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::reset(), 1).retry);
}

TEST(WouldRetry, Retriable4xxMeans409) {
  auto p = policy("retriable-4xx", 1);
  EXPECT_TRUE(decide(p, AttemptOutcome::response(409), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(429), 1).retry);
}

TEST(WouldRetry, ListedStatusCodesAreRetried) {
  auto p = policy("429,418", 1);
  EXPECT_TRUE(decide(p, AttemptOutcome::response(429), 1).retry);
  EXPECT_TRUE(decide(p, AttemptOutcome::response(418), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(503), 1).retry);
}

TEST(WouldRetry, GrpcTokensLookAtGrpcStatus) {
  auto p = policy("unavailable,cancelled,deadline-exceeded,resource-exhausted,internal", 1);
  for (int g : {1, 4, 8, 13, 14})
    EXPECT_TRUE(decide(p, AttemptOutcome::response(200, g), 1).retry) << "grpc-status " << g;
  EXPECT_FALSE(decide(p, AttemptOutcome::response(200, 0), 1).retry);
  EXPECT_FALSE(decide(p, AttemptOutcome::response(200, 2), 1).retry) << "UNKNOWN is not listed";
  EXPECT_FALSE(decide(p, AttemptOutcome::response(200), 1).retry);
}

TEST(WouldRetry, GrpcUnavailableIsNotRetriedWhenOnlyHttpTokensAreSet) {
  EXPECT_FALSE(decide(policy("5xx", 1), AttemptOutcome::response(200, 14), 1).retry);
}

TEST(WouldRetry, NoRetryWhenTheRouteDeadlineHasPassed) {
  RetryBudget budget;
  auto d =
      wouldRetry(policy("5xx", 3), AttemptOutcome::response(503), 1, Duration(0), true, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, RetryReason::kNoTimeLeft);
  EXPECT_TRUE(
      wouldRetry(policy("5xx", 3), AttemptOutcome::response(503), 1, Duration(1), true, budget)
          .retry);
}

TEST(WouldRetry, BodyTooLargeToReplayIsNotRetried) {
  RetryBudget budget;
  auto d =
      wouldRetry(policy("5xx", 3), AttemptOutcome::response(503), 1, std::nullopt, false, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, RetryReason::kBodyNotReplayable);
}

TEST(WouldRetry, SpentBudgetStopsRetries) {
  RetryBudget budget({20.0, 1});
  auto request = budget.trackRequest();
  auto in_flight = budget.tryRetry();
  ASSERT_TRUE(in_flight);
  auto d =
      wouldRetry(policy("5xx", 3), AttemptOutcome::response(503), 1, std::nullopt, true, budget);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, RetryReason::kBudgetExhausted);
}

TEST(WouldRetry, EveryReasonHasADescription) {
  for (auto r : {RetryReason::kRetry, RetryReason::kDisabled, RetryReason::kNotRetriable,
                 RetryReason::kAttemptsExhausted, RetryReason::kNoTimeLeft,
                 RetryReason::kBodyNotReplayable, RetryReason::kBudgetExhausted})
    EXPECT_NE(describe(r), "?");
}

TEST(Backoff, FirstRetryWaitsLessThanTheBaseInterval) {
  BackoffPolicy b;
  EXPECT_EQ(backoffDelay(b, 1, 0), 0ms);
  EXPECT_EQ(backoffDelay(b, 1, 24), 24ms);
  EXPECT_EQ(backoffDelay(b, 1, 25), 0ms);
}

TEST(Backoff, RangeGrowsAsTwoToTheNMinusOneTimesBase) {
  BackoffPolicy b;
  EXPECT_EQ(backoffDelay(b, 2, 74), 74ms);    // [0, 75)
  EXPECT_EQ(backoffDelay(b, 3, 174), 174ms);  // [0, 175)
}

TEST(Backoff, NeverExceedsTenTimesBase) {
  BackoffPolicy b;
  std::mt19937_64 rng(1);
  for (uint32_t retry = 1; retry < 100; ++retry)
    for (int i = 0; i < 50; ++i) EXPECT_LT(backoffDelay(b, retry, rng()), 250ms);
}

TEST(Backoff, FullJitterSpreadsOverTheWholeRange) {
  BackoffPolicy b;
  std::mt19937_64 rng(3);
  Duration lo = 1000ms, hi = 0ms;
  for (int i = 0; i < 1000; ++i) {
    auto d = backoffDelay(b, 10, rng());
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 10ms);
  EXPECT_GT(hi, 240ms);
}

}  // namespace
}  // namespace sluice::waypoint
