// ClusterState: what one worker keeps about one upstream cluster from request to request: the
// load balancer (its position, the hash ring), outlier ejections, the circuit breaker and the
// retry budget (per cluster, as Envoy's: one failing service cannot spend another's), requests
// in flight per endpoint, and the cluster's Envoy statistics. The decisions themselves are the
// pure modules under waypoint/policy/; this type holds their state and counts what they did.
//
// Guarantees: single-threaded (one per cluster per worker, no locks). sync() rebuilds only
// what a new configuration changed: outlier history and in-flight counts survive a
// configuration that leaves the cluster's endpoints and outlier settings as they were.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/telemetry/cluster_metrics.h"
#include "waypoint/policy/circuit_breaker.h"
#include "waypoint/policy/load_balancer.h"
#include "waypoint/policy/outlier_detector.h"
#include "waypoint/policy/retry_budget.h"
#include "waypoint/policy/retry_policy.h"
#include "waypoint/service_routes.h"

namespace sluice::waypoint {

class ClusterState {
 public:
  // `stats` may be null (the proxy reports no metrics).
  explicit ClusterState(telemetry::ClusterStats* stats) : stats_(stats) {}
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  // Brings the state up to `cluster`, compiled as part of `owner` (kept alive so the pointer
  // stays unique). Cheap when nothing changed: once per configuration version, not per request.
  void sync(const Cluster& cluster, const std::shared_ptr<const RouteConfig>& owner);

  // An endpoint index by the load balancer, with `context`'s ejected endpoints and requests in
  // flight filled in from this state at `now`; nullopt when every endpoint is ejected (or none).
  std::optional<size_t> pick(PickContext context, Clock::time_point now);

  // Counts one request in flight to an endpoint (least-request balancing) while it lives.
  class InFlight {
   public:
    InFlight(ClusterState& state, size_t endpoint);
    ~InFlight();
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    ClusterState& state_;
    size_t endpoint_;
  };

  // Outlier detection sees every attempt's outcome; an ejection is counted.
  void reportOutcome(size_t endpoint, const AttemptOutcome& outcome, Clock::time_point now);

  CircuitBreaker& breaker() { return breaker_; }
  RetryBudget& budget() { return budget_; }

  // Envoy's retry statistics, from what was decided after try number `attempts`.
  void countRetryDecision(RetryReason reason, uint32_t attempts);
  // The circuit breaker refused a request.
  void countPendingOverflow();

  // The addresses ("ip:port") of the endpoints ejected at `now`.
  std::vector<std::string> ejectedEndpoints(Clock::time_point now) const;

 private:
  void count(prometheus::Counter* telemetry::ClusterStats::*counter) {
    if (stats_) (stats_->*counter)->Increment();
  }

  const Cluster* synced_ = nullptr;  // the compiled cluster the state below was made for,
  std::shared_ptr<const RouteConfig> synced_routes_;  // kept alive so the pointer stays unique
  std::vector<std::string> addresses_;
  std::unique_ptr<LoadBalancer> lb_;
  std::optional<OutlierDetector> outlier_;
  std::optional<OutlierConfig> outlier_config_;
  CircuitBreaker breaker_;
  RetryBudget budget_;
  std::vector<uint32_t> active_;  // requests in flight per endpoint
  std::vector<uint8_t> ejected_;  // the ejected mask of the latest pick, reused
  telemetry::ClusterStats* stats_ = nullptr;
};

}  // namespace sluice::waypoint
