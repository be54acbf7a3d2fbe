// Istio's standard HTTP metrics, as a waypoint reports them (reporter="waypoint"): the four
// series Kiali and the Istio dashboards read, with Istio's labels (those of the TCP series
// plus response_code and grpc_response_status) and Istio's default histogram buckets.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/telemetry/metrics.h"

namespace sluice::telemetry {

struct RequestLabels {
  ConnectionLabels connection;  // request_protocol "http" or "grpc"; response_flags
  int response_code = 0;
  std::string grpc_response_status;  // empty for non-gRPC
};

// Registers its families on `registry` (the process's Metrics registry). Thread-safe.
class RequestMetrics {
 public:
  static constexpr std::string_view kRequestsName = "istio_requests_total";
  static constexpr std::string_view kDurationName = "istio_request_duration_milliseconds";
  static constexpr std::string_view kRequestBytesName = "istio_request_bytes";
  static constexpr std::string_view kResponseBytesName = "istio_response_bytes";

  explicit RequestMetrics(prometheus::Registry& registry);
  ~RequestMetrics();

  // One finished request: counts it and observes its duration and sizes (bytes include
  // headers, as Envoy's do).
  void record(const RequestLabels& labels, double duration_ms, uint64_t request_bytes,
              uint64_t response_bytes);

 private:
  struct Series;
  std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Series>> series_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& request_bytes_;
  prometheus::Family<prometheus::Histogram>& response_bytes_;
};

}  // namespace sluice::telemetry
