#include "core/telemetry/request_metrics.h"

namespace sluice::telemetry {
namespace {

// Istio's defaults: duration buckets in milliseconds, size buckets as powers of ten.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
const prometheus::Histogram::BucketBoundaries kSizeBuckets = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

}  // namespace

struct RequestMetrics::Series {
  prometheus::Counter& requests;
  prometheus::Histogram& duration;
  prometheus::Histogram& request_bytes;
  prometheus::Histogram& response_bytes;
};

RequestMetrics::RequestMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name(std::string(kRequestsName))
                    .Help("The total number of requests")
                    .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name(std::string(kDurationName))
                    .Help("The duration of requests")
                    .Register(registry)),
      request_bytes_(prometheus::BuildHistogram()
                         .Name(std::string(kRequestBytesName))
                         .Help("The sizes of requests")
                         .Register(registry)),
      response_bytes_(prometheus::BuildHistogram()
                          .Name(std::string(kResponseBytesName))
                          .Help("The sizes of responses")
                          .Register(registry)) {}

RequestMetrics::~RequestMetrics() = default;

void RequestMetrics::record(const RequestLabels& labels, double duration_ms, uint64_t request_bytes,
                            uint64_t response_bytes) {
  std::string key;
  appendSeriesKey(labels.connection, key);
  key.append(std::to_string(labels.response_code));
  key.push_back('\x1f');
  key.append(labels.grpc_response_status);
  Series* series = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto& slot = series_[key];
    if (!slot) {
      prometheus::Labels set = toPrometheusLabels(labels.connection);
      set["response_code"] = std::to_string(labels.response_code);
      set["grpc_response_status"] = labels.grpc_response_status;
      slot.reset(new Series{requests_.Add(set), duration_.Add(set, kDurationBuckets),
                            request_bytes_.Add(set, kSizeBuckets),
                            response_bytes_.Add(set, kSizeBuckets)});
    }
    series = slot.get();
  }
  series->requests.Increment();
  series->duration.Observe(duration_ms);
  series->request_bytes.Observe(static_cast<double>(request_bytes));
  series->response_bytes.Observe(static_cast<double>(response_bytes));
}

}  // namespace sluice::telemetry
