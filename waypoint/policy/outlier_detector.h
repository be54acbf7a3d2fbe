// Outlier detection (DestinationRule `outlierDetection`, Envoy consecutive-5xx and
// consecutive-gateway-failure ejection) for the endpoints of one destination. Time is passed in.
//
// Guarantees:
// - An endpoint is ejected when its consecutive 5xx count (5xx responses and locally originated
//   failures: connect failure, reset, timeout) reaches consecutive_5xx, or its consecutive
//   gateway-error count (502, 503, 504 and local failures) reaches consecutive_gateway_errors.
//   A zero threshold disables that detector. Any non-5xx response resets both counts.
// - The n-th ejection of an endpoint lasts min(base_ejection_time x n, max_ejection_time); the
//   endpoint is available again exactly when that time has passed (no sweep interval).
// - At most max_ejection_percent of the endpoints are ejected at once, except that one endpoint
//   may always be ejected when none is (Envoy's documented rule and gRPC's): with Istio's default
//   10% and fewer than 10 endpoints, one bad endpoint can still be taken out. A
//   max_ejection_percent of 0 ejects nothing.
// - Reports about an endpoint that is already ejected are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "waypoint/policy/deadline.h"

namespace sluice::waypoint {

struct OutlierConfig {
  uint32_t consecutive_5xx = 5;             // Istio consecutive5xxErrors, default 5
  uint32_t consecutive_gateway_errors = 0;  // Istio consecutiveGatewayErrors, default off
  Duration base_ejection_time{30'000};      // Istio default 30s
  Duration max_ejection_time{300'000};      // Envoy default 300s
  uint32_t max_ejection_percent = 10;       // Istio default 10%
};

class OutlierDetector {
 public:
  OutlierDetector(OutlierConfig config, size_t endpoints);

  // Endpoints are indices into the destination's endpoint list; resizing keeps the state of the
  // first min(old, new) endpoints (the config compiler keeps indices stable across updates).
  void resize(size_t endpoints);
  size_t size() const { return hosts_.size(); }

  // Each returns true when this report ejected the endpoint.
  bool reportResponse(size_t endpoint, int status, Clock::time_point now);
  bool reportLocalFailure(size_t endpoint, Clock::time_point now);

  bool isEjected(size_t endpoint, Clock::time_point now) const;
  size_t ejectedCount(Clock::time_point now) const;
  // Fills `ejected` with 1 for each endpoint ejected at `now`, for the load balancer.
  void ejectedMask(Clock::time_point now, std::vector<uint8_t>& ejected) const;
  uint32_t timesEjected(size_t endpoint) const { return hosts_[endpoint].times_ejected; }
  std::optional<Clock::time_point> ejectedUntil(size_t endpoint) const;

 private:
  struct Host {
    uint32_t consecutive_5xx = 0;
    uint32_t consecutive_gateway = 0;
    uint32_t times_ejected = 0;
    std::optional<Clock::time_point> ejected_until;
  };

  bool recordFailure(size_t endpoint, bool gateway_error, Clock::time_point now);
  bool mayEject(Clock::time_point now) const;

  OutlierConfig config_;
  std::vector<Host> hosts_;
};

}  // namespace sluice::waypoint
