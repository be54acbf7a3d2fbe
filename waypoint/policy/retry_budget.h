// Retry budget: retries in flight may be at most a percentage of the requests in flight, so that
// retries cannot multiply an outage. Envoy's semantics and defaults (circuit breaker
// `retry_budget`: budget_percent 20%, min_retry_concurrency 3).
//
// Guarantees: wouldAdmit() is a pure query; tryRetry() admits exactly when wouldAdmit() says
// so, and the returned ticket holds the slot until the retry ends. At least
// min_retry_concurrency retries are always allowed, so a quiet service can still retry.
#pragma once

#include <cstdint>
#include <optional>

#include "waypoint/policy/admission.h"

namespace sluice::waypoint {

struct RetryBudgetConfig {
  double budget_percent = 20.0;
  uint32_t min_retry_concurrency = 3;
};

class RetryBudget {
 public:
  explicit RetryBudget(RetryBudgetConfig config = {}) : config_(config) {}

  // Held for the life of every downstream request (pending or active) to the cluster.
  Ticket trackRequest() { return Ticket(active_requests_); }

  // How many retries may be in flight now: max(min_retry_concurrency, percent of requests).
  uint32_t allowedRetries() const;
  bool wouldAdmit() const { return active_retries_ < allowedRetries(); }
  std::optional<Ticket> tryRetry();

  uint32_t activeRequests() const { return active_requests_; }
  uint32_t activeRetries() const { return active_retries_; }

 private:
  RetryBudgetConfig config_;
  uint32_t active_requests_ = 0;
  uint32_t active_retries_ = 0;
};

}  // namespace sluice::waypoint
