// A worker's per-cluster state (see cluster_state.h): resync on a new configuration, endpoint
// choice, outlier reports and the cluster's counters.
#include "waypoint/cluster_state.h"

#include "core/net/authority.h"

namespace sluice::waypoint {

void ClusterState::sync(const Cluster& cluster, const std::shared_ptr<const RouteConfig>& owner) {
  // Compiled clusters never change: the work below is needed once per configuration version,
  // not per request.
  if (synced_ == &cluster && synced_routes_ == owner) return;
  synced_ = &cluster;
  synced_routes_ = owner;
  std::vector<std::string> addresses;
  for (const auto& e : cluster.endpoints) addresses.push_back(net::formatAuthority(e.address));
  bool same_outlier =
      (outlier_config_.has_value() == cluster.outlier.has_value()) &&
      (!cluster.outlier ||
       (outlier_config_->consecutive_5xx == cluster.outlier->consecutive_5xx &&
        outlier_config_->base_ejection_time == cluster.outlier->base_ejection_time &&
        outlier_config_->max_ejection_percent == cluster.outlier->max_ejection_percent &&
        outlier_config_->consecutive_gateway_errors ==
            cluster.outlier->consecutive_gateway_errors));
  if (!lb_ || addresses_ != addresses || lb_->policy() != cluster.lb || !same_outlier) {
    lb_ = std::make_unique<LoadBalancer>(cluster.lb, addresses);
    if (cluster.outlier) {
      if (!outlier_ || !same_outlier)
        outlier_.emplace(*cluster.outlier, addresses.size());
      else if (addresses_ != addresses)
        outlier_->resize(addresses.size());
    } else {
      outlier_.reset();
    }
    outlier_config_ = cluster.outlier;
    active_.assign(addresses.size(), 0);
    addresses_ = std::move(addresses);
  }
  breaker_.setLimits(cluster.limits);
}

std::optional<size_t> ClusterState::pick(PickContext context, Clock::time_point now) {
  if (outlier_)
    outlier_->ejectedMask(now, ejected_);
  else
    ejected_.clear();
  context.ejected = ejected_;
  context.active_requests = active_;
  return lb_->pick(context);
}

ClusterState::InFlight::InFlight(ClusterState& state, size_t endpoint)
    : state_(state), endpoint_(endpoint) {
  ++state_.active_[endpoint_];
}

ClusterState::InFlight::~InFlight() {
  // A new configuration may have resized the counts (and zeroed them) meanwhile.
  if (endpoint_ < state_.active_.size() && state_.active_[endpoint_] > 0)
    --state_.active_[endpoint_];
}

void ClusterState::reportOutcome(size_t endpoint, const AttemptOutcome& outcome,
                                 Clock::time_point now) {
  if (!outlier_) return;
  bool ejected = outcome.kind == AttemptOutcome::Kind::kResponse
                     ? outlier_->reportResponse(endpoint, outcome.status, now)
                     : outlier_->reportLocalFailure(endpoint, now);
  if (ejected) count(&telemetry::ClusterStats::ejections_enforced);
}

void ClusterState::countRetryDecision(RetryReason reason, uint32_t attempts) {
  using S = telemetry::ClusterStats;
  switch (reason) {
    case RetryReason::kRetry:
      count(&S::retry);
      break;
    case RetryReason::kBudgetExhausted:
      count(&S::retry_overflow);
      break;
    case RetryReason::kAttemptsExhausted:
      count(&S::retry_limit_exceeded);
      break;
    case RetryReason::kNotRetriable:
      if (attempts > 1) count(&S::retry_success);
      break;
    default:
      break;
  }
}

void ClusterState::countPendingOverflow() { count(&telemetry::ClusterStats::pending_overflow); }

std::vector<std::string> ClusterState::ejectedEndpoints(Clock::time_point now) const {
  std::vector<std::string> out;
  if (!outlier_) return out;
  for (size_t i = 0; i < addresses_.size(); ++i)
    if (outlier_->isEjected(i, now)) out.push_back(addresses_[i]);
  return out;
}

}  // namespace sluice::waypoint
