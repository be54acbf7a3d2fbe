#include "core/telemetry/response_flags.h"

#include <array>

namespace sluice::telemetry {
namespace {

constexpr std::array kAllFlags = {
    ResponseFlag::kNoHealthyUpstream,
    ResponseFlag::kUpstreamConnectionFailure,
    ResponseFlag::kUpstreamOverflow,
    ResponseFlag::kNoRouteFound,
    ResponseFlag::kUpstreamRetryLimitExceeded,
    ResponseFlag::kUpstreamRequestTimeout,
    ResponseFlag::kUpstreamRemoteReset,
    ResponseFlag::kDelayInjected,
    ResponseFlag::kFaultInjected,
    ResponseFlag::kRbacDenied,
    ResponseFlag::kDownstreamConnectionTermination,
    ResponseFlag::kAuthorizationPolicyDenied,
};

}  // namespace

std::string_view shortName(ResponseFlag flag) {
  switch (flag) {
    case ResponseFlag::kNoHealthyUpstream:
      return "UH";
    case ResponseFlag::kUpstreamConnectionFailure:
      return "UF";
    case ResponseFlag::kUpstreamOverflow:
      return "UO";
    case ResponseFlag::kNoRouteFound:
      return "NR";
    case ResponseFlag::kUpstreamRetryLimitExceeded:
      return "URX";
    case ResponseFlag::kUpstreamRequestTimeout:
      return "UT";
    case ResponseFlag::kUpstreamRemoteReset:
      return "UR";
    case ResponseFlag::kDelayInjected:
      return "DI";
    case ResponseFlag::kFaultInjected:
      return "FI";
    case ResponseFlag::kRbacDenied:
      return "RBAC";
    case ResponseFlag::kDownstreamConnectionTermination:
      return "DC";
    case ResponseFlag::kAuthorizationPolicyDenied:
      return "DENY";
  }
  return "?";
}

std::string ResponseFlags::toString() const {
  std::string out;
  for (ResponseFlag flag : kAllFlags) {
    if (!has(flag)) continue;
    if (!out.empty()) out += ',';
    out += shortName(flag);
  }
  return out.empty() ? std::string(kNoResponseFlags) : out;
}

}  // namespace sluice::telemetry
