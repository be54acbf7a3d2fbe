#include "core/telemetry/workload_labels.h"

#include <initializer_list>

#include "core/config/objects.h"
#include "core/config/service_rules.h"

namespace sluice::telemetry {
namespace {

// The first non-empty value among `keys`, else `fallback`.
std::string label(const config::Pod& pod, std::initializer_list<const char*> keys,
                  std::string fallback) {
  for (const char* key : keys) {
    auto it = pod.meta.labels.find(key);
    if (it != pod.meta.labels.end() && !it->second.empty()) return it->second;
  }
  return fallback;
}

// Istio's source_cluster / destination_cluster for workloads of this (single) cluster.
constexpr const char* kCluster = "Kubernetes";

}  // namespace

std::string workloadName(const config::Pod& pod) {
  auto hash = pod.meta.labels.find("pod-template-hash");
  if (hash != pod.meta.labels.end() && !hash->second.empty()) {
    const auto marker = "-" + hash->second + "-";
    const auto at = pod.meta.name.rfind(marker);
    if (at != std::string::npos && at > 0) return pod.meta.name.substr(0, at);
  }
  return pod.meta.name;
}

WorkloadLabels workloadLabels(const config::Pod& pod, std::string_view principal) {
  WorkloadLabels out;
  out.workload = workloadName(pod);
  out.workload_namespace = pod.meta.ns;
  if (!principal.empty()) out.principal = principal;
  out.app = label(pod, {"app.kubernetes.io/name", "app"}, std::string(kUnknown));
  out.version = label(pod, {"app.kubernetes.io/version", "version"}, std::string(kUnknown));
  out.cluster = kCluster;
  out.canonical_service = label(
      pod, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"}, out.workload);
  out.canonical_revision =
      label(pod, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
            "latest");
  return out;
}

void ConnectionLabels::setDestinationService(const config::Service& service) {
  destination_service = config::serviceFqdn(service);
  destination_service_name = service.meta.name;
  destination_service_namespace = service.meta.ns;
}

}  // namespace sluice::telemetry
