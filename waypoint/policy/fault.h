// Fault injection (VirtualService `fault`, HTTPRoute extension): delay and abort decisions from
// injected random values.
//
// Guarantees:
// - A FaultPolicy is valid by construction: create() rejects percentages outside 0..100 (or NaN),
//   HTTP abort statuses outside 200..599 and gRPC statuses outside 0..16.
// - Delay and abort are decided independently, each from its own random value, and both may
//   apply: the delay is served first, then the abort (Envoy's order). Flags: DI, FI.
// - Percentages have a resolution of 1/10,000 of a percent (Envoy's per-million fractions):
//   0 never fires and 100 always does.
#pragma once

#include <cstdint>
#include <optional>

#include "core/result.h"
#include "core/telemetry/response_flags.h"
#include "waypoint/policy/deadline.h"

namespace sluice::waypoint {

struct DelayFault {
  Duration fixed_delay{0};
  double percentage = 0;  // 0..100
};

struct AbortFault {
  int http_status = 0;             // the status to answer with (200..599), when grpc_status unset
  std::optional<int> grpc_status;  // a gRPC abort: HTTP 200 with this grpc-status
  double percentage = 0;           // 0..100
};

class FaultPolicy {
 public:
  static Result<FaultPolicy> create(std::optional<DelayFault> delay,
                                    std::optional<AbortFault> abort);
  const std::optional<DelayFault>& delay() const { return delay_; }
  const std::optional<AbortFault>& abort() const { return abort_; }

 private:
  FaultPolicy() = default;
  std::optional<DelayFault> delay_;
  std::optional<AbortFault> abort_;
};

struct FaultDecision {
  std::optional<Duration> delay;    // wait this long before going on
  std::optional<AbortFault> abort;  // then answer with this instead of forwarding
  telemetry::ResponseFlags flags;   // DI and/or FI
  // The HTTP status of the abort response: http_status, or 200 for a gRPC abort.
  int abortHttpStatus() const;
};

// True with probability percentage/100 for a uniform `random`.
bool percentageHit(double percentage, uint64_t random);

FaultDecision decideFault(const FaultPolicy& policy, uint64_t delay_random, uint64_t abort_random);

}  // namespace sluice::waypoint
