#include "waypoint/policy/fault.h"

#include <cmath>
#include <string>

namespace sluice::waypoint {
namespace {

constexpr uint64_t kMillion = 1'000'000;

Result<void> checkPercentage(double p, const char* what) {
  if (std::isnan(p) || p < 0 || p > 100)
    return makeError(std::string("fault.") + what + ".percentage must be between 0 and 100, got " +
                     std::to_string(p));
  return success();
}

}  // namespace

Result<FaultPolicy> FaultPolicy::create(std::optional<DelayFault> delay,
                                        std::optional<AbortFault> abort) {
  if (delay) {
    if (auto ok = checkPercentage(delay->percentage, "delay"); !ok) return ok.error();
    if (delay->fixed_delay < Duration::zero())
      return makeError("fault.delay.fixedDelay must not be negative");
  }
  if (abort) {
    if (auto ok = checkPercentage(abort->percentage, "abort"); !ok) return ok.error();
    if (abort->grpc_status) {
      if (*abort->grpc_status < 0 || *abort->grpc_status > 16)
        return makeError("fault.abort.grpcStatus must be a gRPC status code (0..16), got " +
                         std::to_string(*abort->grpc_status));
    } else if (abort->http_status < 200 || abort->http_status > 599) {
      return makeError("fault.abort.httpStatus must be between 200 and 599, got " +
                       std::to_string(abort->http_status));
    }
  }
  FaultPolicy policy;
  policy.delay_ = delay;
  policy.abort_ = abort;
  return policy;
}

int FaultDecision::abortHttpStatus() const {
  if (!abort) return 0;
  return abort->grpc_status ? 200 : abort->http_status;
}

bool percentageHit(double percentage, uint64_t random) {
  if (!(percentage > 0)) return false;
  if (percentage >= 100) return true;
  auto threshold = static_cast<uint64_t>(std::llround(percentage * (kMillion / 100)));
  return random % kMillion < threshold;
}

FaultDecision decideFault(const FaultPolicy& policy, uint64_t delay_random, uint64_t abort_random) {
  FaultDecision out;
  if (const auto& d = policy.delay(); d && percentageHit(d->percentage, delay_random)) {
    out.delay = d->fixed_delay;
    out.flags.add(telemetry::ResponseFlag::kDelayInjected);
  }
  if (const auto& a = policy.abort(); a && percentageHit(a->percentage, abort_random)) {
    out.abort = a;
    out.flags.add(telemetry::ResponseFlag::kFaultInjected);
  }
  return out;
}

}  // namespace sluice::waypoint
