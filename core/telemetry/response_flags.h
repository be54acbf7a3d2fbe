// Envoy/Istio response flags: the short codes in access logs and the `response_flags` metric
// label that say why the proxy, not the upstream, shaped a response or a connection. The
// waypoint and ztunnel both name their outcomes from here.
//
// Guarantees: each flag has exactly one short name, the one Envoy prints (checked against
// Envoy's access-log documentation; DENY is Istio ztunnel's); a set prints its flags in a fixed order joined by ','
// and prints "-" when empty, as Envoy does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/telemetry/workload_labels.h"

namespace sluice::telemetry {

enum class ResponseFlag : uint16_t {
  kNoHealthyUpstream = 1 << 0,           // UH: 503, every endpoint ejected or none
  kUpstreamConnectionFailure = 1 << 1,   // UF: 503, connect failed
  kUpstreamOverflow = 1 << 2,            // UO: 503, circuit breaker (pool limits) tripped
  kNoRouteFound = 1 << 3,                // NR: 404, no route matched
  kUpstreamRetryLimitExceeded = 1 << 4,  // URX: retries exhausted on a retriable failure
  kUpstreamRequestTimeout = 1 << 5,      // UT: 504, route or per-try timeout
  kUpstreamRemoteReset = 1 << 6,         // UR: 503, upstream reset the stream
  kDelayInjected = 1 << 7,               // DI: a fault delay was applied
  kFaultInjected = 1 << 8,               // FI: a fault abort answered the request
  kRbacDenied = 1 << 9,                  // RBAC: L7 authorization denied (403)
  kDownstreamConnectionTermination = 1 << 10,  // DC: the client went away mid-request
  kAuthorizationPolicyDenied = 1 << 11,  // DENY: ztunnel refused the connection (Istio's ztunnel)
};

std::string_view shortName(ResponseFlag flag);

class ResponseFlags {
 public:
  ResponseFlags() = default;
  ResponseFlags(ResponseFlag flag) : bits_(static_cast<uint16_t>(flag)) {}

  ResponseFlags& add(ResponseFlag flag) {
    bits_ |= static_cast<uint16_t>(flag);
    return *this;
  }
  ResponseFlags& add(ResponseFlags other) {
    bits_ |= other.bits_;
    return *this;
  }
  bool has(ResponseFlag flag) const { return bits_ & static_cast<uint16_t>(flag); }
  bool empty() const { return bits_ == 0; }
  // "UT", "DI,UT", or "-" for none.
  std::string toString() const;

 private:
  uint16_t bits_ = 0;
};

}  // namespace sluice::telemetry
