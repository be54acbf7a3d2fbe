#include "ztunnel/labels.h"

namespace sluice::ztunnel {

namespace {

std::string label(const config::Pod& pod, std::initializer_list<const char*> keys,
                  std::string fallback) {
  for (const char* key : keys) {
    auto it = pod.meta.labels.find(key);
    if (it != pod.meta.labels.end() && !it->second.empty()) return it->second;
  }
  return fallback;
}

struct WorkloadLabels {
  std::string workload, ns, app, version, canonical_service, canonical_revision;
};

WorkloadLabels workloadLabels(const config::Pod& pod) {
  WorkloadLabels out;
  out.workload = workloadName(pod);
  out.ns = pod.meta.ns;
  out.app = label(pod, {"app.kubernetes.io/name", "app"}, "unknown");
  out.version = label(pod, {"app.kubernetes.io/version", "version"}, "unknown");
  out.canonical_service = label(
      pod, {"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"}, out.workload);
  out.canonical_revision = label(
      pod, {"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"},
      "latest");
  return out;
}

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

void setSource(telemetry::ConnectionLabels& labels, const config::Pod& pod,
               const std::string& principal) {
  const auto w = workloadLabels(pod);
  labels.source_workload = w.workload;
  labels.source_workload_namespace = w.ns;
  labels.source_app = w.app;
  labels.source_version = w.version;
  labels.source_canonical_service = w.canonical_service;
  labels.source_canonical_revision = w.canonical_revision;
  labels.source_cluster = kCluster;
  if (!principal.empty()) labels.source_principal = principal;
}

void setDestination(telemetry::ConnectionLabels& labels, const config::Pod& pod,
                    const std::string& principal) {
  const auto w = workloadLabels(pod);
  labels.destination_workload = w.workload;
  labels.destination_workload_namespace = w.ns;
  labels.destination_app = w.app;
  labels.destination_version = w.version;
  labels.destination_canonical_service = w.canonical_service;
  labels.destination_canonical_revision = w.canonical_revision;
  labels.destination_cluster = kCluster;
  if (!principal.empty()) labels.destination_principal = principal;
}

void setDestinationService(telemetry::ConnectionLabels& labels, const config::Service& service) {
  labels.destination_service =
      service.meta.name + "." + service.meta.ns + ".svc.cluster.local";
  labels.destination_service_name = service.meta.name;
  labels.destination_service_namespace = service.meta.ns;
}

}  // namespace sluice::ztunnel
