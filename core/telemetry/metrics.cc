#include "core/telemetry/metrics.h"

#include <prometheus/text_serializer.h>

#include <map>
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

// The counters of one label set. Closed counters are per response flag, looked up at close.
struct Metrics::Connection::Series {
  prometheus::Family<prometheus::Counter>& closed_family;
  prometheus::Labels labels;  // response_flags "-"; the closed series swaps in the flags
  prometheus::Counter& opened;
  prometheus::Counter& sent;
  prometheus::Counter& received;
  std::mutex mutex;
  std::map<std::string, prometheus::Counter*, std::less<>> closed_by_flags;

  prometheus::Counter& closed(std::string_view flags) {
    // Created on first use, so a label set with no closed connection exports no closed series.
    std::lock_guard lock(mutex);
    auto it = closed_by_flags.find(flags);
    if (it == closed_by_flags.end()) {
      auto labels_with_flags = labels;
      labels_with_flags["response_flags"] = std::string(flags);
      it = closed_by_flags.emplace(std::string(flags), &closed_family.Add(labels_with_flags)).first;
    }
    return *it->second;
  }
};

Metrics::~Metrics() = default;

std::unique_ptr<Metrics::Connection> Metrics::openConnection(const ConnectionLabels& labels) {
  const std::string_view values[] = {
      labels.reporter, labels.source_workload, labels.source_workload_namespace,
      labels.source_principal, labels.source_app, labels.source_version, labels.source_cluster,
      labels.source_canonical_service, labels.source_canonical_revision,
      labels.destination_service, labels.destination_service_name,
      labels.destination_service_namespace, labels.destination_workload,
      labels.destination_workload_namespace, labels.destination_principal, labels.destination_app,
      labels.destination_version, labels.destination_cluster,
      labels.destination_canonical_service, labels.destination_canonical_revision,
      labels.request_protocol, labels.connection_security_policy};
  std::string key;
  for (auto value : values) {
    key.append(value);
    key.push_back('\x1f');
  }
  Connection::Series* series = nullptr;
  {
    std::lock_guard lock(series_mutex_);
    auto& slot = series_[key];
    if (!slot) {
      prometheus::Labels set = toPrometheusLabels(labels);
      // Flags describe how a connection ended, so the open and byte series never carry them.
      set["response_flags"] = std::string(kNoResponseFlags);
      slot.reset(new Connection::Series{closed_, set, opened_.Add(set), sent_.Add(set),
                                        received_.Add(set), {}, {}});
    }
    series = slot.get();
  }
  series->opened.Increment();
  return std::make_unique<Connection>(Connection::Key{}, *series);
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

Metrics::Connection::Connection(Key, Series& series) : series_(series) {}

void Metrics::Connection::addSent(uint64_t n) {
  sent_total_.fetch_add(n, std::memory_order_relaxed);
  series_.sent.Increment(static_cast<double>(n));
}

void Metrics::Connection::addReceived(uint64_t n) {
  received_total_.fetch_add(n, std::memory_order_relaxed);
  series_.received.Increment(static_cast<double>(n));
}

void Metrics::Connection::close(std::string_view response_flags) {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  if (response_flags.empty()) response_flags = kNoResponseFlags;
  series_.closed(response_flags).Increment();
}

}  // namespace sluice::telemetry
