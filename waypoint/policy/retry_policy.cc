#include "waypoint/policy/retry_policy.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace sluice::waypoint {
namespace {

constexpr std::array<std::pair<std::string_view, RetryOn>, 12> kTokens = {{
    {"5xx", RetryOn::k5xx},
    {"gateway-error", RetryOn::kGatewayError},
    {"reset", RetryOn::kReset},
    {"connect-failure", RetryOn::kConnectFailure},
    {"retriable-4xx", RetryOn::kRetriable4xx},
    {"refused-stream", RetryOn::kRefusedStream},
    {"retriable-status-codes", RetryOn::kRetriableStatusCodes},
    {"cancelled", RetryOn::kCancelled},
    {"deadline-exceeded", RetryOn::kDeadlineExceeded},
    {"resource-exhausted", RetryOn::kResourceExhausted},
    {"internal", RetryOn::kInternal},
    {"unavailable", RetryOn::kUnavailable},
}};

// gRPC status codes that the gRPC tokens retry on.
constexpr std::array<std::pair<RetryOn, int>, 5> kGrpcTokens = {{
    {RetryOn::kCancelled, 1},
    {RetryOn::kDeadlineExceeded, 4},
    {RetryOn::kResourceExhausted, 8},
    {RetryOn::kInternal, 13},
    {RetryOn::kUnavailable, 14},
}};

constexpr uint32_t bit(RetryOn token) { return static_cast<uint32_t>(token); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Outcomes without a response: which tokens cover each kind.
uint32_t tokensForNoResponse(AttemptOutcome::Kind kind) {
  const uint32_t any_no_response =
      bit(RetryOn::k5xx) | bit(RetryOn::kGatewayError) | bit(RetryOn::kReset);
  switch (kind) {
    case AttemptOutcome::Kind::kConnectFailure:
      return any_no_response | bit(RetryOn::kConnectFailure);
    case AttemptOutcome::Kind::kRefusedStream:
      return any_no_response | bit(RetryOn::kRefusedStream);
    case AttemptOutcome::Kind::kResetBeforeResponse:
    case AttemptOutcome::Kind::kPerTryTimeout:
      return any_no_response;
    case AttemptOutcome::Kind::kResponse:
      return 0;
  }
  return 0;
}

bool responseRetriable(const RetryPolicy& policy, int status, std::optional<int> grpc_status) {
  if (policy.has(RetryOn::k5xx) && status >= 500 && status <= 599) return true;
  if (policy.has(RetryOn::kGatewayError) && (status == 502 || status == 503 || status == 504))
    return true;
  if (policy.has(RetryOn::kRetriable4xx) && status == 409) return true;
  if (policy.has(RetryOn::kRetriableStatusCodes) &&
      std::find(policy.retriable_status_codes.begin(), policy.retriable_status_codes.end(),
                status) != policy.retriable_status_codes.end())
    return true;
  if (grpc_status) {
    for (auto [token, code] : kGrpcTokens)
      if (policy.has(token) && *grpc_status == code) return true;
  }
  return false;
}

RetryDecision no(RetryReason reason) { return {false, reason, {}}; }

}  // namespace

RetryPolicy RetryPolicy::istioDefault() {
  RetryPolicy p;
  p.attempts = 2;
  p.retry_on = bit(RetryOn::kConnectFailure) | bit(RetryOn::kRefusedStream) |
               bit(RetryOn::kUnavailable) | bit(RetryOn::kCancelled) |
               bit(RetryOn::kRetriableStatusCodes);
  p.retriable_status_codes = {503};
  return p;
}

Result<ParsedRetryOn> parseRetryOn(std::string_view text) {
  ParsedRetryOn out;
  while (true) {
    size_t comma = text.find(',');
    std::string_view token = trim(text.substr(0, comma));
    if (!token.empty()) {
      auto known = std::find_if(kTokens.begin(), kTokens.end(),
                                [token](const auto& t) { return t.first == token; });
      int code = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), code);
      if (known != kTokens.end()) {
        out.bits |= bit(known->second);
      } else if (ec == std::errc() && end == token.data() + token.size() && code >= 100 &&
                 code <= 599) {
        out.status_codes.push_back(code);
        out.bits |= bit(RetryOn::kRetriableStatusCodes);
      } else {
        return makeError("retryOn: \"" + std::string(token) +
                         "\" is neither a retry condition (5xx, gateway-error, reset, "
                         "connect-failure, retriable-4xx, refused-stream, retriable-status-codes, "
                         "cancelled, deadline-exceeded, internal, resource-exhausted, "
                         "unavailable) nor an HTTP status code");
      }
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

Result<RetryPolicy> retryPolicyFrom(const std::optional<RetrySpec>& spec) {
  RetryPolicy policy = RetryPolicy::istioDefault();
  if (!spec) return policy;
  if (spec->attempts) policy.attempts = *spec->attempts;
  if (spec->per_try_timeout) {
    if (*spec->per_try_timeout < Duration::zero())
      return makeError("retries.perTryTimeout must not be negative");
    policy.per_try_timeout = *spec->per_try_timeout;
  }
  if (spec->retry_on) {
    auto parsed = parseRetryOn(*spec->retry_on);
    if (!parsed) return parsed.error();
    policy.retry_on = parsed->bits;
    policy.retriable_status_codes = std::move(parsed->status_codes);
  }
  return policy;
}

bool isRetriable(const RetryPolicy& policy, const AttemptOutcome& outcome) {
  if (outcome.kind == AttemptOutcome::Kind::kResponse)
    return responseRetriable(policy, outcome.status, outcome.grpc_status);
  return (policy.retry_on & tokensForNoResponse(outcome.kind)) != 0;
}

std::string_view describe(RetryReason reason) {
  switch (reason) {
    case RetryReason::kRetry:
      return "retrying";
    case RetryReason::kDisabled:
      return "retries disabled";
    case RetryReason::kNotRetriable:
      return "outcome not covered by retryOn";
    case RetryReason::kAttemptsExhausted:
      return "retry attempts exhausted";
    case RetryReason::kNoTimeLeft:
      return "no time left before the route timeout";
    case RetryReason::kBodyNotReplayable:
      return "request body too large to replay";
    case RetryReason::kBudgetExhausted:
      return "retry budget exhausted";
  }
  return "?";
}

RetryDecision wouldRetry(const RetryPolicy& policy, const AttemptOutcome& outcome,
                         uint32_t attempts_made, std::optional<Duration> remaining_time,
                         bool body_replayable, const RetryBudget& budget) {
  if (!policy.enabled()) return no(RetryReason::kDisabled);
  if (!isRetriable(policy, outcome)) return no(RetryReason::kNotRetriable);
  uint32_t retries_made = attempts_made > 0 ? attempts_made - 1 : 0;
  if (retries_made >= policy.attempts)
    return {false, RetryReason::kAttemptsExhausted,
            telemetry::ResponseFlag::kUpstreamRetryLimitExceeded};
  if (remaining_time && *remaining_time <= Duration::zero()) return no(RetryReason::kNoTimeLeft);
  if (!body_replayable) return no(RetryReason::kBodyNotReplayable);
  if (!budget.wouldAdmit()) return no(RetryReason::kBudgetExhausted);
  return {true, RetryReason::kRetry, {}};
}

Duration backoffDelay(const BackoffPolicy& backoff, uint32_t retry, uint64_t random) {
  if (retry == 0 || backoff.base <= Duration::zero()) return Duration::zero();
  const int64_t base = backoff.base.count();
  const int64_t cap = std::max(backoff.max.count(), base);
  // (2^retry - 1) * base, saturating at the cap without overflowing.
  int64_t ceiling = cap;
  if (retry < 62) {
    int64_t factor = (int64_t{1} << retry) - 1;
    if (factor <= cap / base) ceiling = std::min(cap, factor * base);
  }
  return Duration(static_cast<int64_t>(random % static_cast<uint64_t>(ceiling)));
}

}  // namespace sluice::waypoint
