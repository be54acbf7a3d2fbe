#include "waypoint/policy/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace sluice::waypoint {

uint32_t RetryBudget::allowedRetries() const {
  double share = std::floor(active_requests_ * config_.budget_percent / 100.0);
  uint32_t by_percent = share <= 0 ? 0u : static_cast<uint32_t>(share);
  return std::max(config_.min_retry_concurrency, by_percent);
}

std::optional<Ticket> RetryBudget::tryRetry() {
  if (!wouldAdmit()) return std::nullopt;
  return Ticket(active_retries_);
}

}  // namespace sluice::waypoint
