// L7 authorization with Istio AuthorizationPolicy semantics, on the waypoint's own types (the
// config compiler fills them from security.istio.io objects already selected for the workload).
//
// Guarantees:
// - Order: CUSTOM policies are skipped (no external authorizer yet) and AUDIT ones do not decide;
//   then any matching DENY policy denies; then, if the workload has ALLOW policies, the request
//   is allowed only when one matches; with no ALLOW policy it is allowed.
// - A policy matches when any of its rules matches; a policy without rules matches nothing
//   (so `spec: {}` is "allow nothing"), and an empty rule `{}` matches everything.
// - A rule matches when its from, to and when parts all match: any listed source, any listed
//   operation, every condition. Within a source or operation every set field must match, a
//   positive field by any of its values, a `not` field by none of them.
// - String values follow Istio: exact, prefix ("/api*"), suffix ("*.local"), or presence ("*",
//   any non-empty value). Hosts compare case-insensitively; everything else is case-sensitive.
// - Invalid IP blocks and unsupported condition keys are Errors at construction, never
//   surprises on the data path.
// - The decision names the policy that decided, for access logs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/telemetry/response_flags.h"
#include "waypoint/policy/match.h"

namespace sluice::waypoint {

// An address range from ipBlocks ("10.0.0.0/8", "fd00::/64", "192.0.2.7").
class CidrBlock {
 public:
  static Result<CidrBlock> parse(std::string_view text);
  bool contains(std::string_view address) const;  // false for an unparsable address

 private:
  std::array<uint8_t, 16> bytes_{};
  uint8_t prefix_ = 0;
  bool v6_ = false;
};

// A list of Istio string values and, separately, their `not` list.
struct StringValues {
  std::vector<std::string> values;      // empty: the field is not set
  std::vector<std::string> not_values;  // empty: the field is not set
};

struct Source {
  StringValues principals;  // "cluster.local/ns/<ns>/sa/<sa>" (a "spiffe://" prefix is ignored)
  StringValues namespaces;
  std::vector<CidrBlock> ip_blocks, not_ip_blocks;
};

struct Operation {
  StringValues hosts;  // case-insensitive
  StringValues ports;  // decimal strings
  StringValues methods;
  StringValues paths;  // the path without query
};

class Condition {
 public:
  // Keys the waypoint understands: request.headers[<name>], source.ip, remote.ip,
  // source.namespace, source.principal, destination.port.
  static Result<Condition> create(std::string key, std::vector<std::string> values,
                                  std::vector<std::string> not_values);
  const std::string& key() const { return key_; }

 private:
  friend struct AuthorizationEvaluator;
  enum class Key { kHeader, kSourceIp, kSourceNamespace, kSourcePrincipal, kDestinationPort };
  Condition() = default;
  std::string key_;
  Key kind_ = Key::kHeader;
  std::string header_;  // for kHeader
  std::vector<std::string> values_, not_values_;
  std::vector<CidrBlock> blocks_, not_blocks_;  // for the IP keys
};

struct AuthorizationRule {
  std::vector<Source> from;     // empty: any source
  std::vector<Operation> to;    // empty: any operation
  std::vector<Condition> when;  // empty: no condition
};

struct AuthorizationPolicy {
  enum class Action { kAllow, kDeny, kAudit, kCustom };
  std::string name;  // "namespace/name", reported in decisions
  Action action = Action::kAllow;
  std::vector<AuthorizationRule> rules;
};

// Who is calling, as the waypoint knows it from mTLS and the connection.
struct Peer {
  std::string_view principal;  // from the client certificate's SPIFFE ID; empty when unknown
  std::string_view namespace_;
  std::string_view ip;
};

struct AuthorizationDecision {
  enum class Reason {
    kDenyPolicyMatched,
    kAllowPolicyMatched,
    kNoAllowPolicyMatched,
    kNoAllowPolicies,
  };
  bool allowed = true;
  Reason reason = Reason::kNoAllowPolicies;
  std::string policy;  // the policy that decided; empty when none did

  static constexpr int kDeniedStatus = 403;
  static constexpr telemetry::ResponseFlag kDeniedFlag = telemetry::ResponseFlag::kRbacDenied;
};

// Istio's string rules: exact, "prefix*", "*suffix", "*" (non-empty).
bool istioStringMatches(std::string_view pattern, std::string_view value, bool ignore_case = false);

AuthorizationDecision authorize(const std::vector<AuthorizationPolicy>& policies, const Peer& peer,
                                const RequestView& request, uint16_t destination_port);

}  // namespace sluice::waypoint
