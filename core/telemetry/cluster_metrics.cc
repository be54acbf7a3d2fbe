#include "core/telemetry/cluster_metrics.h"

#include "core/telemetry/metrics.h"

namespace sluice::telemetry {

ClusterMetrics::ClusterMetrics(prometheus::Registry& registry)
    : retry_(counterFamily(registry, kRetryName, "Total request retries")),
      retry_success_(counterFamily(registry, kRetrySuccessName, "Total request retry successes")),
      retry_overflow_(counterFamily(registry, kRetryOverflowName,
                                    "Total requests not retried due to the retry budget or "
                                    "circuit breaking")),
      retry_limit_exceeded_(counterFamily(registry, kRetryLimitExceededName,
                                          "Total requests not retried because the configured "
                                          "attempts were used up")),
      pending_overflow_(counterFamily(registry, kPendingOverflowName,
                                      "Total requests that overflowed circuit breaking and were "
                                      "failed")),
      ejections_enforced_(counterFamily(registry, kEjectionsEnforcedName,
                                        "Number of enforced ejections due to any outlier type")) {}

ClusterMetrics::~ClusterMetrics() = default;

ClusterStats& ClusterMetrics::cluster(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& slot = clusters_[name];
  if (!slot) {
    const prometheus::Labels labels{{"cluster_name", name}};
    slot = std::make_unique<ClusterStats>(
        &retry_.Add(labels), &retry_success_.Add(labels), &retry_overflow_.Add(labels),
        &retry_limit_exceeded_.Add(labels), &pending_overflow_.Add(labels),
        &ejections_enforced_.Add(labels));
  }
  return *slot;
}

}  // namespace sluice::telemetry
