// Istio's standard TCP metrics (names and labels as Istio and ztunnel report them), so Kiali and
// the Istio Grafana dashboards read Sluice's numbers unchanged.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/telemetry/workload_labels.h"

namespace sluice::telemetry {

// A counter family `name` registered on `registry` (every family of the process's counters).
prometheus::Family<prometheus::Counter>& counterFamily(prometheus::Registry& registry,
                                                       std::string_view name, const char* help);

// The Prometheus labels exactly as exported (empty values replaced by their defaults).
prometheus::Labels toPrometheusLabels(const ConnectionLabels& labels);
// Appends what tells these labels' series apart (the exported values, in a fixed order, each
// ended by \x1f): a cache key that costs no label map.
void appendSeriesKey(const ConnectionLabels& labels, std::string& key);

// Owns the registry and the four istio_tcp_* counter families. Thread-safe; one per process.
class Metrics {
 public:
  static constexpr std::string_view kOpenedName = "istio_tcp_connections_opened_total";
  static constexpr std::string_view kClosedName = "istio_tcp_connections_closed_total";
  static constexpr std::string_view kSentName = "istio_tcp_sent_bytes_total";
  static constexpr std::string_view kReceivedName = "istio_tcp_received_bytes_total";

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // For other components that register their own families next to these.
  prometheus::Registry& registry() { return *registry_; }

  // One open TCP connection. Byte counters are cached references, so addSent/addReceived cost an
  // atomic add and no label lookup. Must not outlive the Metrics that opened it. All methods may
  // be called from any thread.
  class Connection {
   public:
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() { close(); }

    // Istio orients bytes by request/response, for either reporter: "sent" is what flowed in the
    // response direction (destination workload to source workload), "received" what flowed in the
    // request direction (source to destination). On an outbound (reporter="source") connection,
    // bytes the local client wrote are therefore addReceived().
    void addSent(uint64_t n);
    void addReceived(uint64_t n);

    // Totals for this connection alone (for the access log).
    uint64_t sentBytes() const { return sent_total_.load(std::memory_order_relaxed); }
    uint64_t receivedBytes() const { return received_total_.load(std::memory_order_relaxed); }

    // Counts the connection as closed, with `response_flags` on that series ("-" for none).
    // Only the first call counts; later calls and the destructor do nothing.
    void close(std::string_view response_flags = kNoResponseFlags);

    // Only Metrics can make the key, so only openConnection() creates connections.
    struct Key {
     private:
      friend class Metrics;
      Key() = default;
    };
    struct Series;
    Connection(Key, Series& series);

   private:
    Series& series_;
    std::atomic<uint64_t> sent_total_{0};
    std::atomic<uint64_t> received_total_{0};
    std::atomic<bool> closed_{false};
  };

  // Increments istio_tcp_connections_opened_total for these labels.
  std::unique_ptr<Connection> openConnection(const ConnectionLabels& labels);

  // Everything in registry(), in the Prometheus text exposition format (version 0.0.4).
  std::string serialize() const;

 private:
  // One entry per distinct label set, so a new connection costs a string key and a hash
  // lookup instead of building 23 labels and hashing them into four families.
  std::mutex series_mutex_;
  std::unordered_map<std::string, std::unique_ptr<Connection::Series>> series_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& opened_;
  prometheus::Family<prometheus::Counter>& closed_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Counter>& received_;
};

}  // namespace sluice::telemetry
