// The issue's waypoint scenarios, composed from the pure pieces the way the proxy will use them:
// route -> weighted destination -> endpoint -> attempts with deadlines, retries and outlier
// reports. Upstreams are scripted; time is simulated, never read.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "waypoint/policy/deadline.h"
#include "waypoint/policy/load_balancer.h"
#include "waypoint/policy/outlier_detector.h"
#include "waypoint/policy/retry_policy.h"

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;
using telemetry::ResponseFlag;
using telemetry::ResponseFlags;

// What an endpoint does with one attempt: its outcome and how long it takes.
struct Scripted {
  AttemptOutcome outcome;
  Duration takes;
};

struct Served {
  int status = 0;
  ResponseFlags flags;
  int attempts = 0;
  std::vector<size_t> endpoints;
  Clock::time_point finished;
};

// The proxy's attempt loop in miniature: decide, wait, pick, try.
Served serve(const RetryPolicy& policy, Timeouts timeouts, LoadBalancer& lb,
             OutlierDetector& outliers, RetryBudget& budget,
             const std::function<Scripted(size_t endpoint, int attempt)>& upstream) {
  std::mt19937_64 rng(42);
  const Clock::time_point start = Clock::time_point() + 10h;
  Clock::time_point now = start;
  auto request_ticket = budget.trackRequest();
  Served result;
  std::vector<uint8_t> ejected;
  while (true) {
    outliers.ejectedMask(now, ejected);
    auto endpoint = lb.pick({.ejected = ejected, .tried = result.endpoints, .random1 = rng()});
    if (!endpoint) return {503, ResponseFlag::kNoHealthyUpstream, result.attempts, {}, now};
    result.endpoints.push_back(*endpoint);
    ++result.attempts;
    Scripted s = upstream(*endpoint, result.attempts);
    AttemptDeadline deadline = attemptDeadline(timeouts, start, now);
    AttemptOutcome outcome = s.outcome;
    if (deadline.at && now + s.takes >= *deadline.at) {
      now = *deadline.at;
      if (deadline.kind == DeadlineKind::kTotal) {
        result.status = kTimeoutStatus;
        result.flags.add(ResponseFlag::kUpstreamRequestTimeout);
        result.finished = now;
        return result;
      }
      outcome = AttemptOutcome::perTryTimeout();
    } else {
      now += s.takes;
    }
    if (outcome.kind == AttemptOutcome::Kind::kResponse)
      outliers.reportResponse(*endpoint, outcome.status, now);
    else
      outliers.reportLocalFailure(*endpoint, now);
    RetryDecision d = wouldRetry(policy, outcome, result.attempts,
                                 remainingTime(timeouts, start, now), true, budget);
    if (!d.retry) {
      result.flags = d.flags;
      if (outcome.kind == AttemptOutcome::Kind::kResponse) {
        result.status = outcome.status;
      } else if (outcome.kind == AttemptOutcome::Kind::kPerTryTimeout) {
        result.status = kTimeoutStatus;
        result.flags.add(ResponseFlag::kUpstreamRequestTimeout);
      } else {
        result.status = 503;
        result.flags.add(ResponseFlag::kUpstreamConnectionFailure);
      }
      result.finished = now;
      return result;
    }
    auto retry_ticket = budget.tryRetry();
    now += backoffDelay(policy.backoff, result.attempts, rng());
  }
}

RetryPolicy issuePolicy() {  // retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
  return *retryPolicyFrom(RetrySpec{3, Duration(2s), std::string("5xx")});
}

struct Fixture {
  LoadBalancer lb{LbPolicy::kRoundRobin, {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}};
  OutlierDetector outliers{OutlierConfig{}, 3};
  RetryBudget budget;
};

TEST(RequestScenario, FailsTwiceThenSucceedsAndTheClientSees200) {
  Fixture f;
  auto r = serve(issuePolicy(), {5s, 2s}, f.lb, f.outliers, f.budget, [](size_t, int attempt) {
    return Scripted{AttemptOutcome::response(attempt <= 2 ? 503 : 200), 10ms};
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_TRUE(r.flags.empty());
  EXPECT_EQ(r.endpoints, (std::vector<size_t>{0, 1, 2})) << "each retry went elsewhere";
}

TEST(RequestScenario, PerTryTimeoutCutsASlowTryAndTheRetrySucceeds) {
  Fixture f;
  auto r = serve(issuePolicy(), {5s, 2s}, f.lb, f.outliers, f.budget, [](size_t, int attempt) {
    return Scripted{AttemptOutcome::response(200), attempt == 1 ? 3s : 20ms};
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_LT(r.finished - (Clock::time_point() + 10h), 2s + 25ms + 20ms + 1ms);
}

TEST(RequestScenario, TotalTimeoutReturns504WithUT) {
  Fixture f;
  auto r = serve(issuePolicy(), {5s, 2s}, f.lb, f.outliers, f.budget, [](size_t, int) {
    return Scripted{AttemptOutcome::response(200), 10s};
  });
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.flags.toString(), "UT");
  EXPECT_EQ(r.finished, Clock::time_point() + 10h + 5s) << "never past the route timeout";
}

TEST(RequestScenario, AttemptsZeroReturnsTheFirstFailure) {
  Fixture f;
  auto r = serve(*retryPolicyFrom(RetrySpec{0, std::nullopt, std::string("5xx")}), {5s, 0ms}, f.lb,
                 f.outliers, f.budget, [](size_t, int) {
                   return Scripted{AttemptOutcome::response(503), 1ms};
                 });
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.attempts, 1);
}

TEST(RequestScenario, PersistentFailureExhaustsRetriesWithURX) {
  Fixture f;
  auto r = serve(issuePolicy(), {5s, 2s}, f.lb, f.outliers, f.budget, [](size_t, int) {
    return Scripted{AttemptOutcome::response(503), 1ms};
  });
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.attempts, 4);
  EXPECT_EQ(r.flags.toString(), "URX");
}

TEST(RequestScenario, ConnectFailureRetriedByDefaultPolicy) {
  Fixture f;
  auto r =
      serve(RetryPolicy::istioDefault(), {}, f.lb, f.outliers, f.budget, [](size_t endpoint, int) {
        return endpoint == 0 ? Scripted{AttemptOutcome::connectFailure(), 1ms}
                             : Scripted{AttemptOutcome::response(200), 1ms};
      });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 2);
}

TEST(RequestScenario, BadEndpointIsEjectedAndSkippedByLaterRequests) {
  Fixture f;
  auto broken_first = [](size_t endpoint, int) {
    return Scripted{AttemptOutcome::response(endpoint == 0 ? 500 : 200), 1ms};
  };
  // Round robin lands on endpoint 0 once every three picks; five 500s eject it.
  for (int i = 0; i < 15; ++i) serve(issuePolicy(), {}, f.lb, f.outliers, f.budget, broken_first);
  EXPECT_TRUE(f.outliers.isEjected(0, Clock::time_point() + 10h));
  for (int i = 0; i < 6; ++i) {
    auto r = serve(issuePolicy(), {}, f.lb, f.outliers, f.budget, broken_first);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_NE(r.endpoints[0], 0u);
  }
}

}  // namespace
}  // namespace sluice::waypoint
