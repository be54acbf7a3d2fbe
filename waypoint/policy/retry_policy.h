// Retry policy: when a failed attempt is tried again. The decision ("would retry?") is a pure
// function, separate from the act of retrying (Envoy's split); the proxy calls wouldRetry() after
// every failed attempt and, on kRetry, waits backoffDelay() and picks another endpoint.
//
// Guarantees:
// - `attempts` counts retries after the first try, as Istio's `attempts` and Envoy's
//   num_retries do: attempts 3 allows up to 4 tries; attempts 0 disables retries.
// - With no `retries` block, the policy is Istio's default: 2 retries on
//   connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes with 503.
// - A retry is never decided when no time is left before the route deadline, when the request
//   body could not be buffered for replay, or when the retry budget is spent.
// - Unknown retryOn tokens are an Error for the config compiler, not a silent no-op.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/telemetry/response_flags.h"
#include "waypoint/policy/deadline.h"
#include "waypoint/policy/retry_budget.h"

namespace sluice::waypoint {

// retryOn tokens (Envoy x-envoy-retry-on and x-envoy-retry-grpc-on names).
enum class RetryOn : uint32_t {
  k5xx = 1 << 0,             // any 5xx, or no response at all (reset, connect failure, timeout)
  kGatewayError = 1 << 1,    // 502, 503, 504, or no response at all
  kReset = 1 << 2,           // no response: disconnect, reset, connect failure, timeout
  kConnectFailure = 1 << 3,  // the connection could not be made
  kRetriable4xx = 1 << 4,    // 409
  kRefusedStream = 1 << 5,   // HTTP/2 REFUSED_STREAM (the upstream did not process it)
  kRetriableStatusCodes = 1 << 6,  // the status codes listed in the policy
  kCancelled = 1 << 7,             // grpc-status 1
  kDeadlineExceeded = 1 << 8,      // grpc-status 4
  kResourceExhausted = 1 << 9,     // grpc-status 8
  kInternal = 1 << 10,             // grpc-status 13
  kUnavailable = 1 << 11,          // grpc-status 14
};

struct BackoffPolicy {
  Duration base{25};  // Envoy's default base interval
  Duration max{250};  // Envoy's default: 10 x base
};

struct RetryPolicy {
  uint32_t attempts = 0;  // retries after the first try; 0 disables
  Duration per_try_timeout{0};
  uint32_t retry_on = 0;  // RetryOn bits
  std::vector<int> retriable_status_codes;
  BackoffPolicy backoff;

  static RetryPolicy istioDefault();
  static RetryPolicy disabled() { return {}; }
  bool enabled() const { return attempts > 0 && retry_on != 0; }
  bool has(RetryOn token) const { return retry_on & static_cast<uint32_t>(token); }
};

// What a VirtualService `retries` block (or HTTPRoute `retry`) says, before defaults.
struct RetrySpec {
  std::optional<uint32_t> attempts;
  std::optional<Duration> per_try_timeout;
  std::optional<std::string> retry_on;
};

struct ParsedRetryOn {
  uint32_t bits = 0;
  std::vector<int> status_codes;
};

// "5xx,gateway-error,409" -> bits and codes. A number (100..599) is a retriable status code and
// turns on retriable-status-codes, as Istio does. Spaces around tokens are allowed.
Result<ParsedRetryOn> parseRetryOn(std::string_view text);

// The policy a route gets: Istio's default when `spec` is absent; otherwise the default with the
// fields the spec sets replaced (a retryOn string replaces both the tokens and the codes).
Result<RetryPolicy> retryPolicyFrom(const std::optional<RetrySpec>& spec);

// What happened to one attempt.
struct AttemptOutcome {
  enum class Kind {
    kConnectFailure,       // no connection to the endpoint
    kResetBeforeResponse,  // the stream or connection was reset before response headers
    kRefusedStream,        // HTTP/2 REFUSED_STREAM
    kPerTryTimeout,        // the per-try deadline fired before response headers
    kResponse,             // response headers arrived
  };
  Kind kind = Kind::kResponse;
  int status = 0;                  // kResponse: the HTTP status
  std::optional<int> grpc_status;  // kResponse: grpc-status from headers or trailers-only

  static AttemptOutcome connectFailure() { return {Kind::kConnectFailure, 0, std::nullopt}; }
  static AttemptOutcome reset() { return {Kind::kResetBeforeResponse, 0, std::nullopt}; }
  static AttemptOutcome refusedStream() { return {Kind::kRefusedStream, 0, std::nullopt}; }
  static AttemptOutcome perTryTimeout() { return {Kind::kPerTryTimeout, 0, std::nullopt}; }
  static AttemptOutcome response(int status, std::optional<int> grpc_status = std::nullopt) {
    return {Kind::kResponse, status, grpc_status};
  }
};

// Whether the policy's retryOn covers this outcome (ignoring attempts, time and budget).
bool isRetriable(const RetryPolicy& policy, const AttemptOutcome& outcome);

enum class RetryReason {
  kRetry,              // retry it
  kDisabled,           // no retry policy (attempts 0)
  kNotRetriable,       // a success, or a failure retryOn does not cover
  kAttemptsExhausted,  // retriable, but the retries are used up (flag URX)
  kNoTimeLeft,         // the route deadline has passed or is about to
  kBodyNotReplayable,  // the request body was larger than the replay buffer
  kBudgetExhausted,    // the retry budget (or max retries) says no
};

struct RetryDecision {
  bool retry = false;
  RetryReason reason = RetryReason::kNotRetriable;
  telemetry::ResponseFlags flags;  // URX when retries were exhausted
};

std::string_view describe(RetryReason reason);

// attempts_made: tries made so far, including the one that produced `outcome` (>= 1).
// remaining_time: time left before the route deadline; nullopt when there is no route timeout.
RetryDecision wouldRetry(const RetryPolicy& policy, const AttemptOutcome& outcome,
                         uint32_t attempts_made, std::optional<Duration> remaining_time,
                         bool body_replayable, const RetryBudget& budget);

// Fully jittered exponential backoff before retry number `retry` (1 for the first retry): a
// uniform value in [0, min((2^retry - 1) * base, max)), from the caller's uniform `random`.
Duration backoffDelay(const BackoffPolicy& backoff, uint32_t retry, uint64_t random);

}  // namespace sluice::waypoint
