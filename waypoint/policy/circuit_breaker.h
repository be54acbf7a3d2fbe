// Connection-pool admission (DestinationRule `connectionPool`, Envoy circuit breakers): limits on
// pending requests, requests in flight and retries in flight for one destination.
//
// Guarantees: a try*() call either returns a ticket that holds one slot until it is destroyed,
// or nullopt when the limit is reached, in which case the caller answers 503 with flag UO
// (kOverflowFlag). Counts never exceed their limits. Defaults are Istio's: unlimited (2^32-1)
// unless the DestinationRule sets a limit.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

#include "core/telemetry/response_flags.h"
#include "waypoint/policy/admission.h"

namespace sluice::waypoint {

struct CircuitBreakerLimits {
  static constexpr uint32_t kUnlimited = std::numeric_limits<uint32_t>::max();
  uint32_t max_pending_requests = kUnlimited;  // Istio http1MaxPendingRequests
  uint32_t max_requests = kUnlimited;          // Istio http2MaxRequests
  uint32_t max_retries = kUnlimited;           // Istio maxRetries
};

class CircuitBreaker {
 public:
  static constexpr telemetry::ResponseFlag kOverflowFlag =
      telemetry::ResponseFlag::kUpstreamOverflow;
  static constexpr int kOverflowStatus = 503;

  explicit CircuitBreaker(CircuitBreakerLimits limits = {}) : limits_(limits) {}

  // A request waiting for a pooled connection.
  std::optional<Ticket> tryPending() { return admit(pending_, limits_.max_pending_requests); }
  // A request sent upstream (first try or retry).
  std::optional<Ticket> tryRequest() { return admit(requests_, limits_.max_requests); }
  // A retry in flight.
  std::optional<Ticket> tryRetry() { return admit(retries_, limits_.max_retries); }

  // New limits apply to admissions from now on; tickets already out keep their slots.
  void setLimits(CircuitBreakerLimits limits) { limits_ = limits; }

  uint32_t pending() const { return pending_; }
  uint32_t requests() const { return requests_; }
  uint32_t retries() const { return retries_; }
  const CircuitBreakerLimits& limits() const { return limits_; }

 private:
  static std::optional<Ticket> admit(uint32_t& counter, uint32_t limit) {
    if (counter >= limit) return std::nullopt;
    return Ticket(counter);
  }

  CircuitBreakerLimits limits_;
  uint32_t pending_ = 0;
  uint32_t requests_ = 0;
  uint32_t retries_ = 0;
};

}  // namespace sluice::waypoint
