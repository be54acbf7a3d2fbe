// Router: takes a routed request to its cluster (Envoy's router, beside its UpstreamRequest,
// here upstream_attempt.h). It builds the request as the upstream sees it, admits it through
// the cluster's circuit breaker, runs attempts at endpoints the load balancer picks, and asks
// the pure retry policy (wouldRetry) after each whether to try again; then it streams the
// chosen response back, or answers with the failure.
//
// Guarantees: every request is answered or, once a response has started, aborted (never left
// truncated as if whole); the route's deadlines bound all attempts and backoffs together.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <random>
#include <string>

#include "waypoint/deadlines.h"
#include "waypoint/exchange.h"
#include "waypoint/proxied_request.h"

namespace sluice::waypoint {

class BodyPump;
class ClusterState;
class UpstreamPool;
struct AttemptResult;

class Router {
 public:
  // One per worker: each reference must outlive the router.
  Router(boost::asio::any_io_executor ex, Deadlines& deadlines, UpstreamPool& pool,
         std::mt19937_64& random);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The attempts for `x` (its route and cluster chosen, its body coming from `pump`), under
  // `cluster`'s breaker, outlier detection and retry budget, then the response downstream.
  boost::asio::awaitable<void> route(ProxiedRequest& x, ClusterState& cluster, BodyPump& pump);

 private:
  // The last attempt got no response head: answers 503 or 504 with its failure.
  boost::asio::awaitable<void> failAttempt(ProxiedRequest& x, AttemptResult& attempt,
                                           BodyPump& pump);
  // Commits to `up`'s response: streams it downstream (or relays an upgrade), then pools the
  // connection when it can carry the next request. `not_retried` says why a retriable answer
  // was not retried, for the access log.
  boost::asio::awaitable<void> streamResponse(ProxiedRequest& x, UpstreamCall& up, BodyPump& pump,
                                              const std::string& not_retried);
  // A 101 answer: the two connections' bytes are copied both ways until both ends finish.
  boost::asio::awaitable<void> relayUpgrade(ProxiedRequest& x, UpstreamCall& up);

  boost::asio::any_io_executor ex_;
  Deadlines& deadlines_;
  UpstreamPool& pool_;
  std::mt19937_64& random_;
};

}  // namespace sluice::waypoint
