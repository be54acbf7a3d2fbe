#include "core/telemetry/metrics.h"

#include <prometheus/text_serializer.h>

#include <map>
#include <utility>

namespace sluice::telemetry {

prometheus::Family<prometheus::Counter>& counterFamily(prometheus::Registry& registry,
                                                       std::string_view name, const char* help) {
  return prometheus::BuildCounter().Name(std::string(name)).Help(help).Register(registry);
}

namespace {

// Every label of the connection series, in one place: its name, how to read it, its value when
// the field is empty.
struct LabelField {
  std::string_view name;
  const std::string& (*get)(const ConnectionLabels&);
  std::string_view fallback;
};
using L = ConnectionLabels;
#define SLUICE_LABEL(name, path, fallback)                                  \
  {                                                                         \
    name, [](const L& l) -> const std::string& { return l.path; }, fallback \
  }
constexpr LabelField kLabelFields[] = {
    SLUICE_LABEL("reporter", reporter, "source"),
    SLUICE_LABEL("source_workload", source.workload, kUnknown),
    SLUICE_LABEL("source_workload_namespace", source.workload_namespace, kUnknown),
    SLUICE_LABEL("source_principal", source.principal, kUnknown),
    SLUICE_LABEL("source_app", source.app, kUnknown),
    SLUICE_LABEL("source_version", source.version, kUnknown),
    SLUICE_LABEL("source_cluster", source.cluster, kUnknown),
    SLUICE_LABEL("source_canonical_service", source.canonical_service, kUnknown),
    SLUICE_LABEL("source_canonical_revision", source.canonical_revision, kUnknown),
    SLUICE_LABEL("destination_service", destination_service, kUnknown),
    SLUICE_LABEL("destination_service_name", destination_service_name, kUnknown),
    SLUICE_LABEL("destination_service_namespace", destination_service_namespace, kUnknown),
    SLUICE_LABEL("destination_workload", destination.workload, kUnknown),
    SLUICE_LABEL("destination_workload_namespace", destination.workload_namespace, kUnknown),
    SLUICE_LABEL("destination_principal", destination.principal, kUnknown),
    SLUICE_LABEL("destination_app", destination.app, kUnknown),
    SLUICE_LABEL("destination_version", destination.version, kUnknown),
    SLUICE_LABEL("destination_cluster", destination.cluster, kUnknown),
    SLUICE_LABEL("destination_canonical_service", destination.canonical_service, kUnknown),
    SLUICE_LABEL("destination_canonical_revision", destination.canonical_revision, kUnknown),
    SLUICE_LABEL("request_protocol", request_protocol, "tcp"),
    SLUICE_LABEL("response_flags", response_flags, kNoResponseFlags),
    SLUICE_LABEL("connection_security_policy", connection_security_policy, kUnknown),
};
#undef SLUICE_LABEL
// The connection series' own key leaves the outcome out: it is added on close.
constexpr std::string_view kResponseFlagsLabel = "response_flags";

std::string_view labelValue(const ConnectionLabels& labels, const LabelField& f) {
  const std::string& value = f.get(labels);
  return value.empty() ? f.fallback : std::string_view(value);
}

void appendValues(const ConnectionLabels& labels, std::string& key, std::string_view skipped) {
  size_t length = key.size();
  for (const auto& f : kLabelFields) length += labelValue(labels, f).size() + 1;
  key.reserve(length);  // one allocation on the per-request path, not one per doubling
  for (const auto& f : kLabelFields) {
    if (f.name == skipped) continue;
    key.append(labelValue(labels, f));
    key.push_back('\x1f');
  }
}

}  // namespace

prometheus::Labels toPrometheusLabels(const ConnectionLabels& labels) {
  prometheus::Labels set;
  for (const auto& f : kLabelFields) set.emplace(f.name, labelValue(labels, f));
  return set;
}

void appendSeriesKey(const ConnectionLabels& labels, std::string& key) {
  appendValues(labels, key, {});
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      // Help texts follow Istio's metric descriptions.
      opened_(counterFamily(*registry_, kOpenedName, "The total number of TCP connections opened")),
      closed_(counterFamily(*registry_, kClosedName, "The total number of TCP connections closed")),
      sent_(counterFamily(
          *registry_, kSentName,
          "The size of total bytes sent during response in case of a TCP connection")),
      received_(counterFamily(
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
  // Flags describe how a connection ended, so the open and byte series never carry them.
  std::string key;
  appendValues(labels, key, kResponseFlagsLabel);
  Connection::Series* series = nullptr;
  {
    std::lock_guard lock(series_mutex_);
    auto& slot = series_[key];
    if (!slot) {
      prometheus::Labels set = toPrometheusLabels(labels);
      set["response_flags"] = std::string(kNoResponseFlags);
      slot.reset(new Connection::Series{
          closed_, set, opened_.Add(set), sent_.Add(set), received_.Add(set), {}, {}});
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
