// Connection access log: one JSON object per line, written off the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace sluice::telemetry {

// What one finished connection looks like in the access log. Bytes are from the point of view of
// the workload the reporting proxy serves (what it sent and received), unlike Istio's metrics.
struct ConnectionRecord {
  std::string src;  // "ip:port"
  std::string dst;  // "ip:port"
  std::string src_identity;
  std::string dst_identity;
  std::string src_workload;
  std::string dst_workload;
  std::string direction;  // "inbound" | "outbound"
  std::string error;      // empty when the connection ended cleanly
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  std::chrono::microseconds duration{};
};

// One HTTP request through a waypoint.
struct RequestRecord {
  std::string src;  // the client, "ip:port" (from the tunnel's forwarded header when known)
  std::string src_identity;
  std::string authority;  // the service VIP:port the client asked for
  std::string method, path, protocol;
  std::string route;     // the route that matched ("" for none)
  std::string upstream;  // the endpoint that answered, "ip:port"
  std::string upstream_cluster;
  int response_code = 0;
  std::string response_flags;  // "-" when none
  std::string error;           // why the waypoint answered itself, empty otherwise
  uint32_t attempts = 0;
  uint64_t bytes_received = 0;  // request body
  uint64_t bytes_sent = 0;      // response body
  std::string request_id, traceparent;
  std::chrono::microseconds duration{};
};

// Writes each record as one line:
//   {"timestamp":"2024-05-01T12:00:00.123456Z","level":"info","message":"connection complete",
//    "src":...,"dst":...,"src_identity":...,"dst_identity":...,"src_workload":...,
//    "dst_workload":...,"direction":...,"error":...,"bytes_sent":N,"bytes_received":N,
//    "duration_us":N}
// The timestamp is RFC 3339 in UTC with microseconds; level is "error" when `error` is set, else
// "info". Every line is valid JSON whatever the strings hold (invalid UTF-8 becomes U+FFFD).
// log() only queues the line; a background thread writes it, so a slow disk never stalls a
// connection. When the queue is full the oldest pending line is dropped rather than blocking.
// Thread-safe. Destruction writes out every queued line.
class AccessLog {
 public:
  // `path`: a file to append to (missing parent directories are created), "-" for standard
  // output, or "" to disable logging. Fails when the file cannot be opened, naming it.
  static Result<std::unique_ptr<AccessLog>> create(std::string_view path);

  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return logger_ != nullptr; }
  void log(const ConnectionRecord& record);
  // {"timestamp":...,"level":...,"message":"request complete","src":...,"src_identity":...,
  //  "authority":...,"method":...,"path":...,"protocol":...,"route":...,"upstream":...,
  //  "upstream_cluster":...,"response_code":N,"response_flags":...,"error":...,"attempts":N,
  //  "bytes_received":N,"bytes_sent":N,"request_id":...,"traceparent":...,"duration_us":N};
  // level "error" for 5xx answers.
  void log(const RequestRecord& record);

  // Only for create(); holds the spdlog objects.
  AccessLog(std::shared_ptr<spdlog::details::thread_pool> pool,
            std::shared_ptr<spdlog::logger> logger);

 private:
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace sluice::telemetry
