// Deadline arithmetic for a request and its attempts. Time is always passed in; nothing here
// reads a clock.
//
// Guarantees:
// - The route timeout covers every attempt and every backoff (Envoy's and Istio's semantics),
//   so a per-try timeout never extends the request past its total deadline.
// - A zero duration means "no timeout". Istio sets no route timeout unless the VirtualService
//   (or HTTPRoute `timeouts.request`) says so; the per-try timeout is unset unless given.
// - The deadline that fires first decides the outcome: per-try expiry is an attempt failure the
//   retry policy may retry; total expiry ends the request with 504 and flag UT.
#pragma once

#include <chrono>
#include <optional>

namespace sluice::waypoint {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

struct Timeouts {
  Duration total{0};    // route timeout over all attempts; 0 = none
  Duration per_try{0};  // each attempt; 0 = none (bounded by total only)
};

enum class DeadlineKind { kNone, kTotal, kPerTry };

struct AttemptDeadline {
  std::optional<Clock::time_point> at;      // nullopt: the attempt may run forever
  DeadlineKind kind = DeadlineKind::kNone;  // which limit `at` comes from (kTotal on a tie)
};

// The request's overall deadline, if any.
std::optional<Clock::time_point> requestDeadline(const Timeouts& timeouts,
                                                 Clock::time_point request_start);

// min(try_start + per_try, request_start + total), each only when set.
AttemptDeadline attemptDeadline(const Timeouts& timeouts, Clock::time_point request_start,
                                Clock::time_point try_start);

// Time left before the total deadline at `now`: nullopt when there is no total timeout,
// otherwise never negative.
std::optional<Duration> remainingTime(const Timeouts& timeouts, Clock::time_point request_start,
                                      Clock::time_point now);

// When a deadline fires at `now`: did it end the whole request (true) or only the attempt?
bool totalDeadlineExpired(const Timeouts& timeouts, Clock::time_point request_start,
                          Clock::time_point now);

// The status a timed-out request is answered with (504, flag UT).
inline constexpr int kTimeoutStatus = 504;

}  // namespace sluice::waypoint
