#include "core/telemetry/metrics.h"

#include <prometheus/text_serializer.h>

#include <utility>

namespace sluice::telemetry {
namespace {

prometheus::Family<prometheus::Counter>& addFamily(prometheus::Registry& registry,
                                                   std::string_view name, const char* help) {
  return prometheus::BuildCounter().Name(std::string(name)).Help(help).Register(registry);
}

std::string orDefault(const std::string& value, std::string_view fallback) {
  return value.empty() ? std::string(fallback) : value;
}

}  // namespace

prometheus::Labels toPrometheusLabels(const ConnectionLabels& l) {
  return {
      {"reporter", orDefault(l.reporter, "source")},
      {"source_workload", orDefault(l.source_workload, kUnknown)},
      {"source_workload_namespace", orDefault(l.source_workload_namespace, kUnknown)},
      {"source_principal", orDefault(l.source_principal, kUnknown)},
      {"source_app", orDefault(l.source_app, kUnknown)},
      {"source_version", orDefault(l.source_version, kUnknown)},
      {"source_cluster", orDefault(l.source_cluster, kUnknown)},
      {"source_canonical_service", orDefault(l.source_canonical_service, kUnknown)},
      {"source_canonical_revision", orDefault(l.source_canonical_revision, kUnknown)},
      {"destination_service", orDefault(l.destination_service, kUnknown)},
      {"destination_service_name", orDefault(l.destination_service_name, kUnknown)},
      {"destination_service_namespace", orDefault(l.destination_service_namespace, kUnknown)},
      {"destination_workload", orDefault(l.destination_workload, kUnknown)},
      {"destination_workload_namespace", orDefault(l.destination_workload_namespace, kUnknown)},
      {"destination_principal", orDefault(l.destination_principal, kUnknown)},
      {"destination_app", orDefault(l.destination_app, kUnknown)},
      {"destination_version", orDefault(l.destination_version, kUnknown)},
      {"destination_cluster", orDefault(l.destination_cluster, kUnknown)},
      {"destination_canonical_service", orDefault(l.destination_canonical_service, kUnknown)},
      {"destination_canonical_revision", orDefault(l.destination_canonical_revision, kUnknown)},
      {"request_protocol", orDefault(l.request_protocol, "tcp")},
      {"response_flags", orDefault(l.response_flags, kNoResponseFlags)},
      {"connection_security_policy", orDefault(l.connection_security_policy, kUnknown)},
  };
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      // Help texts follow Istio's metric descriptions.
      opened_(addFamily(*registry_, kOpenedName, "The total number of TCP connections opened")),
      closed_(addFamily(*registry_, kClosedName, "The total number of TCP connections closed")),
      sent_(addFamily(*registry_, kSentName,
                      "The size of total bytes sent during response in case of a TCP connection")),
      received_(addFamily(
          *registry_, kReceivedName,
          "The size of total bytes received during request in case of a TCP connection")) {}

std::unique_ptr<Metrics::Connection> Metrics::openConnection(const ConnectionLabels& labels) {
  prometheus::Labels series = toPrometheusLabels(labels);
  // Flags describe how a connection ended, so the open and byte series never carry them.
  series["response_flags"] = std::string(kNoResponseFlags);
  opened_.Add(series).Increment();
  prometheus::Counter& sent = sent_.Add(series);
  prometheus::Counter& received = received_.Add(series);
  return std::make_unique<Connection>(Connection::Key{}, closed_, std::move(series), sent,
                                      received);
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

Metrics::Connection::Connection(Key, prometheus::Family<prometheus::Counter>& closed,
                                prometheus::Labels labels, prometheus::Counter& sent,
                                prometheus::Counter& received)
    : closed_family_(closed), labels_(std::move(labels)), sent_(sent), received_(received) {}

void Metrics::Connection::addSent(uint64_t n) {
  sent_total_.fetch_add(n, std::memory_order_relaxed);
  sent_.Increment(static_cast<double>(n));
}

void Metrics::Connection::addReceived(uint64_t n) {
  received_total_.fetch_add(n, std::memory_order_relaxed);
  received_.Increment(static_cast<double>(n));
}

void Metrics::Connection::close(std::string_view response_flags) {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  if (response_flags.empty()) response_flags = kNoResponseFlags;
  labels_["response_flags"] = std::string(response_flags);
  closed_family_.Add(labels_).Increment();
}

}  // namespace sluice::telemetry
