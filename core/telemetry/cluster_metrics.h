// Envoy's per-cluster upstream statistics for what the waypoint's resilience features did:
// retries sent, refused and successful, circuit-breaker refusals and outlier ejections. They are
// named as Istio's Envoy proxies export them (envoy_cluster_<stat>, label cluster_name, e.g.
// "outbound|80|v1|api.shop.svc.cluster.local"), so the alerts and dashboards operators already
// have for Istio's waypoints read Sluice's numbers unchanged. istio_requests_total says what
// clients saw; these say why.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::telemetry {

// One cluster's counters, owned by the registry (never null): an increment is one atomic add.
struct ClusterStats {
  prometheus::Counter* retry;                 // retries sent
  prometheus::Counter* retry_success;         // retried requests whose last try was not retried
                                              // again (a success, or a failure not retried on)
  prometheus::Counter* retry_overflow;        // retries the retry budget or maxRetries refused
  prometheus::Counter* retry_limit_exceeded;  // retriable failures with the attempts used up
  prometheus::Counter* pending_overflow;      // requests the circuit breaker refused (503 UO)
  prometheus::Counter* ejections_enforced;    // endpoints ejected by outlier detection
};

// Registers its families on `registry`. Thread-safe.
class ClusterMetrics {
 public:
  static constexpr std::string_view kRetryName = "envoy_cluster_upstream_rq_retry";
  static constexpr std::string_view kRetrySuccessName = "envoy_cluster_upstream_rq_retry_success";
  static constexpr std::string_view kRetryOverflowName = "envoy_cluster_upstream_rq_retry_overflow";
  static constexpr std::string_view kRetryLimitExceededName =
      "envoy_cluster_upstream_rq_retry_limit_exceeded";
  static constexpr std::string_view kPendingOverflowName =
      "envoy_cluster_upstream_rq_pending_overflow";
  static constexpr std::string_view kEjectionsEnforcedName =
      "envoy_cluster_outlier_detection_ejections_enforced_total";

  explicit ClusterMetrics(prometheus::Registry& registry);
  ~ClusterMetrics();

  // The counters of cluster `name`, made (at zero) on first use; the reference stays valid for
  // the life of this object.
  ClusterStats& cluster(const std::string& name);

 private:
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<ClusterStats>, std::less<>> clusters_;
  prometheus::Family<prometheus::Counter>& retry_;
  prometheus::Family<prometheus::Counter>& retry_success_;
  prometheus::Family<prometheus::Counter>& retry_overflow_;
  prometheus::Family<prometheus::Counter>& retry_limit_exceeded_;
  prometheus::Family<prometheus::Counter>& pending_overflow_;
  prometheus::Family<prometheus::Counter>& ejections_enforced_;
};

}  // namespace sluice::telemetry
