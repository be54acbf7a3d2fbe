// A worker's per-cluster state across configuration versions: outlier ejections survive a
// configuration that leaves the cluster as it was, are forgotten when its outlier settings
// change, and ejected endpoints are not picked. Time is passed in; no sockets.
#include "waypoint/cluster_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <set>

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kT0 = Clock::time_point() + 100h;

// A configuration with one cluster of `pods` endpoints (10.0.0.1:8080, ...), each ejected after
// `consecutive_5xx` 5xx answers.
std::shared_ptr<RouteConfig> config(size_t pods, uint32_t consecutive_5xx = 1,
                                    LbPolicy lb = LbPolicy::kRoundRobin) {
  auto routes = std::make_shared<RouteConfig>();
  Cluster cluster;
  cluster.name = "outbound|80||api.shop.svc.cluster.local";
  cluster.lb = lb;
  for (size_t i = 0; i < pods; ++i) {
    Endpoint endpoint;
    endpoint.address = {boost::asio::ip::make_address_v4(0x0a000001 + i), 8080};
    cluster.endpoints.push_back(endpoint);
  }
  OutlierConfig outlier;
  outlier.consecutive_5xx = consecutive_5xx;
  outlier.max_ejection_percent = 100;
  cluster.outlier = outlier;
  routes->clusters.push_back(cluster);
  return routes;
}

std::set<size_t> picks(ClusterState& state, int times, Clock::time_point now) {
  std::set<size_t> seen;
  for (int i = 0; i < times; ++i) {
    auto picked = state.pick(PickContext{}, now);
    if (picked) seen.insert(*picked);
  }
  return seen;
}

TEST(ClusterState, EjectedEndpointIsNotPickedAndIsListed) {
  ClusterState state(nullptr);
  auto routes = config(2);
  state.sync(routes->clusters[0], routes);

  state.reportOutcome(0, AttemptOutcome::response(503), kT0);

  EXPECT_THAT(state.ejectedEndpoints(kT0), testing::ElementsAre("10.0.0.1:8080"));
  EXPECT_EQ(picks(state, 4, kT0), std::set<size_t>{1});
}

TEST(ClusterState, EjectionSurvivesAnUnchangedConfiguration) {
  ClusterState state(nullptr);
  auto first = config(2);
  state.sync(first->clusters[0], first);
  state.reportOutcome(1, AttemptOutcome::reset(), kT0);

  auto second = config(2);  // a new version, the same cluster
  state.sync(second->clusters[0], second);

  EXPECT_THAT(state.ejectedEndpoints(kT0), testing::ElementsAre("10.0.0.2:8080"));
}

TEST(ClusterState, NewOutlierSettingsForgetEjections) {
  ClusterState state(nullptr);
  auto first = config(2);
  state.sync(first->clusters[0], first);
  state.reportOutcome(1, AttemptOutcome::reset(), kT0);

  auto second = config(2, 3);
  state.sync(second->clusters[0], second);

  EXPECT_THAT(state.ejectedEndpoints(kT0), testing::IsEmpty());
  EXPECT_EQ(picks(state, 4, kT0), (std::set<size_t>{0, 1}));
}

// Least request between endpoints 0 and 1: 1 only when it has fewer requests in flight.
size_t leastRequestOfFirstTwo(ClusterState& state) {
  PickContext context;
  context.random1 = 0;
  context.random2 = 1;
  return *state.pick(context, kT0);
}

TEST(ClusterState, RequestsInFlightSteerLeastRequest) {
  ClusterState state(nullptr);
  auto routes = config(2, 1, LbPolicy::kLeastRequest);
  state.sync(routes->clusters[0], routes);
  {
    ClusterState::InFlight in_flight(state, 0);
    EXPECT_EQ(leastRequestOfFirstTwo(state), 1u);
  }
  EXPECT_EQ(leastRequestOfFirstTwo(state), 0u);
}

TEST(ClusterState, RequestEndingAfterANewEndpointSetLeavesTheCountsAtZero) {
  ClusterState state(nullptr);
  auto first = config(2, 1, LbPolicy::kLeastRequest);
  state.sync(first->clusters[0], first);
  {
    ClusterState::InFlight in_flight(state, 0);
    auto second = config(3, 1, LbPolicy::kLeastRequest);
    state.sync(second->clusters[0], second);  // the counts start again at zero
  }
  EXPECT_EQ(leastRequestOfFirstTwo(state), 0u);  // not wrapped below zero
}

TEST(ClusterState, CountsEjectionsAndRetriedRequestsThatEnded) {
  prometheus::Registry registry;
  telemetry::ClusterMetrics metrics(registry);
  auto& stats = metrics.cluster("outbound|80||api.shop.svc.cluster.local");
  ClusterState state(&stats);
  auto routes = config(2);
  state.sync(routes->clusters[0], routes);

  state.reportOutcome(0, AttemptOutcome::response(500), kT0);
  state.countRetryDecision(RetryReason::kNotRetriable, 1);  // a first try's success: no retry
  state.countRetryDecision(RetryReason::kNotRetriable, 2);  // a retry's success
  state.countRetryDecision(RetryReason::kRetry, 1);
  state.countPendingOverflow();

  EXPECT_EQ(stats.ejections_enforced->Value(), 1);
  EXPECT_EQ(stats.retry_success->Value(), 1);
  EXPECT_EQ(stats.retry->Value(), 1);
  EXPECT_EQ(stats.pending_overflow->Value(), 1);
}

}  // namespace
}  // namespace sluice::waypoint
