#include "waypoint/policy/deadline.h"

namespace sluice::waypoint {

std::optional<Clock::time_point> requestDeadline(const Timeouts& timeouts,
                                                 Clock::time_point request_start) {
  if (timeouts.total <= Duration::zero()) return std::nullopt;
  return request_start + timeouts.total;
}

AttemptDeadline attemptDeadline(const Timeouts& timeouts, Clock::time_point request_start,
                                Clock::time_point try_start) {
  AttemptDeadline out;
  if (auto total = requestDeadline(timeouts, request_start)) out = {total, DeadlineKind::kTotal};
  if (timeouts.per_try > Duration::zero()) {
    Clock::time_point per_try = try_start + timeouts.per_try;
    if (!out.at || per_try < *out.at) out = {per_try, DeadlineKind::kPerTry};
  }
  return out;
}

std::optional<Duration> remainingTime(const Timeouts& timeouts, Clock::time_point request_start,
                                      Clock::time_point now) {
  auto deadline = requestDeadline(timeouts, request_start);
  if (!deadline) return std::nullopt;
  if (now >= *deadline) return Duration::zero();
  return std::chrono::ceil<Duration>(*deadline - now);  // a partial millisecond is still time
}

bool totalDeadlineExpired(const Timeouts& timeouts, Clock::time_point request_start,
                          Clock::time_point now) {
  auto deadline = requestDeadline(timeouts, request_start);
  return deadline && now >= *deadline;
}

}  // namespace sluice::waypoint
