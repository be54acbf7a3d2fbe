// Circuit breakers, retry budgets and the tickets that hold their slots.
#include <gtest/gtest.h>

#include <vector>

#include "waypoint/policy/circuit_breaker.h"
#include "waypoint/policy/retry_budget.h"

namespace sluice::waypoint {
namespace {

TEST(Ticket, ReleasesItsSlotWhenDestroyed) {
  uint32_t counter = 0;
  {
    Ticket t(counter);
    EXPECT_EQ(counter, 1u);
  }
  EXPECT_EQ(counter, 0u);
}

TEST(Ticket, MovedTicketReleasesOnce) {
  uint32_t counter = 0;
  Ticket a(counter);
  Ticket b(std::move(a));
  EXPECT_FALSE(a.held());
  EXPECT_TRUE(b.held());
  b = Ticket();
  EXPECT_EQ(counter, 0u);
}

TEST(Ticket, MoveAssignmentReleasesTheOldSlot) {
  uint32_t x = 0, y = 0;
  Ticket a(x);
  Ticket b(y);
  a = std::move(b);
  EXPECT_EQ(x, 0u);
  EXPECT_EQ(y, 1u);
}

TEST(CircuitBreaker, DefaultsAreUnlimitedAsInIstio) {
  CircuitBreaker cb;
  std::vector<Ticket> held;
  for (int i = 0; i < 5000; ++i) held.push_back(std::move(*cb.tryRequest()));
  EXPECT_EQ(cb.requests(), 5000u);
}

TEST(CircuitBreaker, MaxPendingRequestsOverflowsWithUO) {
  CircuitBreaker cb({.max_pending_requests = 2});
  auto a = cb.tryPending();
  auto b = cb.tryPending();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(cb.tryPending());
  EXPECT_EQ(telemetry::ResponseFlags(CircuitBreaker::kOverflowFlag).toString(), "UO");
  EXPECT_EQ(CircuitBreaker::kOverflowStatus, 503);
}

TEST(CircuitBreaker, FinishedRequestFreesItsSlot) {
  CircuitBreaker cb({.max_requests = 1});
  {
    auto first = cb.tryRequest();
    ASSERT_TRUE(first);
    EXPECT_FALSE(cb.tryRequest());
  }
  EXPECT_TRUE(cb.tryRequest());
}

TEST(CircuitBreaker, MaxRetriesLimitsRetriesInFlight) {
  CircuitBreaker cb({.max_retries = 1});
  auto r = cb.tryRetry();
  ASSERT_TRUE(r);
  EXPECT_FALSE(cb.tryRetry());
  EXPECT_TRUE(cb.tryRequest()) << "retries do not use up request slots";
}

TEST(CircuitBreaker, ZeroLimitAdmitsNothing) {
  CircuitBreaker cb({.max_requests = 0});
  EXPECT_FALSE(cb.tryRequest());
}

TEST(RetryBudget, MinimumConcurrencyAllowsRetriesWhenQuiet) {
  RetryBudget budget;  // Envoy defaults: 20%, at least 3
  auto request = budget.trackRequest();
  std::vector<Ticket> retries;
  for (int i = 0; i < 3; ++i) {
    auto t = budget.tryRetry();
    ASSERT_TRUE(t) << i;
    retries.push_back(std::move(*t));
  }
  EXPECT_FALSE(budget.tryRetry());
}

TEST(RetryBudget, AtMostTwentyPercentOfActiveRequestsMayBeRetries) {
  RetryBudget budget;
  std::vector<Ticket> requests;
  for (int i = 0; i < 100; ++i) requests.push_back(budget.trackRequest());
  EXPECT_EQ(budget.allowedRetries(), 20u);
  std::vector<Ticket> retries;
  while (auto t = budget.tryRetry()) retries.push_back(std::move(*t));
  EXPECT_EQ(retries.size(), 20u);
}

TEST(RetryBudget, FinishedRetryReturnsItsShare) {
  RetryBudget budget({50.0, 0});
  auto r1 = budget.trackRequest();
  auto r2 = budget.trackRequest();
  {
    auto retry = budget.tryRetry();
    ASSERT_TRUE(retry);
    EXPECT_FALSE(budget.wouldAdmit());
  }
  EXPECT_TRUE(budget.wouldAdmit());
}

TEST(RetryBudget, FewerActiveRequestsShrinkTheBudget) {
  RetryBudget budget({20.0, 0});
  std::vector<Ticket> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(budget.trackRequest());
  EXPECT_EQ(budget.allowedRetries(), 2u);
  requests.resize(4);
  EXPECT_EQ(budget.allowedRetries(), 0u);
  EXPECT_FALSE(budget.wouldAdmit());
}

}  // namespace
}  // namespace sluice::waypoint
