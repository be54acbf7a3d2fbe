// Load balancing: round robin, least request, random, ring hash; ejection and retry exclusion.
#include "waypoint/policy/load_balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace sluice::waypoint {
namespace {

std::vector<std::string> endpoints(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back("198.18.0." + std::to_string(i + 1) + ":8080");
  return out;
}

TEST(RoundRobin, CyclesThroughEveryEndpoint) {
  LoadBalancer lb(LbPolicy::kRoundRobin, endpoints(3));
  std::vector<size_t> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(*lb.pick({}));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(RoundRobin, SkipsEjectedEndpoints) {
  LoadBalancer lb(LbPolicy::kRoundRobin, endpoints(3));
  std::vector<uint8_t> ejected{0, 1, 0};
  PickContext c{.ejected = ejected};
  for (int i = 0; i < 10; ++i) EXPECT_NE(*lb.pick(c), 1u);
}

TEST(LoadBalancing, AllEjectedPicksNothingSoTheCallerAnswersUH) {
  for (auto policy :
       {LbPolicy::kRoundRobin, LbPolicy::kLeastRequest, LbPolicy::kRandom, LbPolicy::kRingHash}) {
    LoadBalancer lb(policy, endpoints(2));
    std::vector<uint8_t> ejected{1, 1};
    PickContext c{.ejected = ejected, .hash = stableHash("user-1")};
    EXPECT_FALSE(lb.pick(c)) << static_cast<int>(policy);
    c.hash.reset();
    EXPECT_FALSE(lb.pick(c)) << static_cast<int>(policy);
  }
}

TEST(LoadBalancing, NoEndpointsPicksNothing) {
  LoadBalancer lb(LbPolicy::kRingHash, {});
  EXPECT_FALSE(lb.pick({.hash = 5}));
  LoadBalancer rr(LbPolicy::kRoundRobin, {});
  EXPECT_FALSE(rr.pick({}));
}

TEST(LoadBalancing, RetryAvoidsTheEndpointAlreadyTried) {
  for (auto policy :
       {LbPolicy::kRoundRobin, LbPolicy::kLeastRequest, LbPolicy::kRandom, LbPolicy::kRingHash}) {
    LoadBalancer lb(policy, endpoints(3));
    std::mt19937_64 rng(5);
    for (int i = 0; i < 50; ++i) {
      size_t tried[] = {static_cast<size_t>(i % 3)};
      PickContext c{.tried = tried, .hash = stableHash("k"), .random1 = rng(), .random2 = rng()};
      EXPECT_NE(*lb.pick(c), tried[0]) << static_cast<int>(policy);
    }
  }
}

TEST(LoadBalancing, RetryReusesATriedEndpointWhenItIsTheOnlyOneLeft) {
  LoadBalancer lb(LbPolicy::kRandom, endpoints(2));
  std::vector<uint8_t> ejected{0, 1};
  size_t tried[] = {0};
  EXPECT_EQ(lb.pick({.ejected = ejected, .tried = tried}), 0u);
}

TEST(LeastRequest, PowerOfTwoChoicesTakesTheLessLoaded) {
  LoadBalancer lb(LbPolicy::kLeastRequest, endpoints(4));
  std::vector<uint32_t> active{9, 2, 7, 0};
  EXPECT_EQ(lb.pick({.active_requests = active, .random1 = 0, .random2 = 1}), 1u);
  EXPECT_EQ(lb.pick({.active_requests = active, .random1 = 2, .random2 = 3}), 3u);
  EXPECT_EQ(lb.pick({.active_requests = active, .random1 = 2, .random2 = 0}), 2u);
}

TEST(LeastRequest, BusiestEndpointIsRarelyChosen) {
  LoadBalancer lb(LbPolicy::kLeastRequest, endpoints(4));
  std::vector<uint32_t> active{100, 0, 0, 0};
  std::mt19937_64 rng(11);
  int busiest = 0;
  for (int i = 0; i < 4000; ++i)
    busiest += *lb.pick({.active_requests = active, .random1 = rng(), .random2 = rng()}) == 0;
  // Chosen only when both choices land on it: probability 1/16.
  EXPECT_NEAR(busiest, 4000 / 16.0, 4 * std::sqrt(4000 * (1 / 16.0) * (15 / 16.0)));
}

TEST(RandomLb, SpreadsEvenly) {
  LoadBalancer lb(LbPolicy::kRandom, endpoints(4));
  std::mt19937_64 rng(17);
  std::map<size_t, int> counts;
  for (int i = 0; i < 8000; ++i) ++counts[*lb.pick({.random1 = rng()})];
  for (auto [e, n] : counts) EXPECT_NEAR(n, 2000, 4 * std::sqrt(8000 * 0.25 * 0.75)) << e;
}

TEST(RingHash, SameKeyAlwaysReachesTheSameEndpoint) {
  LoadBalancer lb(LbPolicy::kRingHash, endpoints(5));
  auto first = lb.pick({.hash = stableHash("session-42")});
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(lb.pick({.hash = stableHash("session-42"), .random1 = uint64_t(i)}), first);
}

TEST(RingHash, KeysSpreadOverAllEndpoints) {
  LoadBalancer lb(LbPolicy::kRingHash, endpoints(4));
  std::map<size_t, int> counts;
  for (int i = 0; i < 4000; ++i)
    ++counts[*lb.pick({.hash = stableHash("user-" + std::to_string(i))})];
  ASSERT_EQ(counts.size(), 4u);
  for (auto [e, n] : counts) EXPECT_GT(n, 600) << "endpoint " << e << " got " << n;
}

TEST(RingHash, EjectingAnEndpointMovesOnlyItsKeys) {
  LoadBalancer lb(LbPolicy::kRingHash, endpoints(4));
  std::vector<uint8_t> ejected{0, 0, 1, 0};
  for (int i = 0; i < 500; ++i) {
    uint64_t h = stableHash("k" + std::to_string(i));
    size_t before = *lb.pick({.hash = h});
    size_t after = *lb.pick({.ejected = ejected, .hash = h});
    EXPECT_NE(after, 2u);
    if (before != 2u) {
      EXPECT_EQ(after, before) << "key " << i;
    }
  }
}

TEST(RingHash, RingIsAtLeastEnvoysMinimumSize) {
  // Indirectly: with one endpoint every key maps to it.
  LoadBalancer lb(LbPolicy::kRingHash, endpoints(1));
  EXPECT_EQ(lb.pick({.hash = 0}), 0u);
  EXPECT_EQ(lb.pick({.hash = ~uint64_t{0}}), 0u);
}

TEST(RingHash, MissingKeyFallsBackToRandom) {
  LoadBalancer lb(LbPolicy::kRingHash, endpoints(3));
  EXPECT_EQ(lb.pick({.random1 = 2}), 2u);
}

TEST(HashKey, FromHeaderCookieSourceIpAndQuery) {
  RequestView r;
  r.setTarget("/cart?user=bob");
  r.headers = {{"X-User", "alice"}, {"Cookie", "theme=dark; session=abc123"}};
  EXPECT_EQ(hashKey({HashKeySource::Kind::kHeader, "x-user"}, r, ""), stableHash("alice"));
  EXPECT_EQ(hashKey({HashKeySource::Kind::kCookie, "session"}, r, ""), stableHash("abc123"));
  EXPECT_EQ(hashKey({HashKeySource::Kind::kSourceIp, ""}, r, "10.1.2.3"), stableHash("10.1.2.3"));
  EXPECT_EQ(hashKey({HashKeySource::Kind::kQueryParam, "user"}, r, ""), stableHash("bob"));
}

TEST(HashKey, AbsentKeyGivesNoHash) {
  RequestView r;
  r.headers = {{"Cookie", "theme=dark"}};
  EXPECT_FALSE(hashKey({HashKeySource::Kind::kHeader, "x-user"}, r, ""));
  EXPECT_FALSE(hashKey({HashKeySource::Kind::kCookie, "session"}, r, ""));
  EXPECT_FALSE(hashKey({HashKeySource::Kind::kSourceIp, ""}, r, ""));
}

TEST(HashKey, StableHashIsFixedAcrossRuns) {
  // Replicas must agree: the value is pinned (computed independently from FNV-1a + fmix64).
  EXPECT_EQ(stableHash(""), stableHash(""));
  EXPECT_NE(stableHash("a"), stableHash("b"));
  EXPECT_EQ(stableHash("user-1"), 0x41a2fca5c68401c5ull);
}

}  // namespace
}  // namespace sluice::waypoint
