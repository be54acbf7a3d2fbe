// One attempt at one endpoint (Envoy's UpstreamRequest): a connection, pooled or new, the
// request head and body, and the wait for the response head under the attempt's deadline. It
// decides nothing about retries: the router does, from the outcome it returns.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "waypoint/deadlines.h"
#include "waypoint/exchange.h"
#include "waypoint/policy/deadline.h"
#include "waypoint/policy/retry_policy.h"
#include "waypoint/proxied_request.h"

namespace sluice::waypoint {

class BodyPump;
class UpstreamPool;

// Aborts an upstream attempt when its deadline passes (while it lives): the pending read then
// fails, and fired() tells a timeout from a reset. No cancellation plumbing on the stream.
class Watchdog final : public Deadlines::Entry {
 public:
  Watchdog(Deadlines& deadlines, std::optional<Clock::time_point> at, UpstreamCall* call)
      : call_(call) {
    if (at) deadlines.arm(*this, *at);
  }
  bool fired() const { return fired_; }

 private:
  void expire() override {
    fired_ = true;
    call_->abort();
  }
  UpstreamCall* call_;
  bool fired_ = false;
};

struct AttemptResult {
  AttemptOutcome outcome = AttemptOutcome::connectFailure();
  // The call the attempt made last (null when no connection was had); shared with the pump,
  // which may still be sending. The router aborts it when its answer is not wanted.
  std::shared_ptr<UpstreamCall> up;
  std::string failure;  // why no response head came, for the access log
  // Reading the client's body failed (a malformed chunk, a reset): the request is lost, and the
  // call is aborted already.
  bool request_failed = false;
};

// Sends `request` for `x` to `endpoint` and waits for the response head until `deadline`. A
// pooled connection the app had closed, or a refused stream, gets the request once more on a
// new connection when the body can be replayed: the app never saw it, so that is no retry.
boost::asio::awaitable<AttemptResult> attemptUpstream(UpstreamPool& pool, Deadlines& deadlines,
                                                      const ProxiedRequest& x,
                                                      const Endpoint& endpoint,
                                                      const UpstreamRequest& request,
                                                      BodyPump& pump, AttemptDeadline deadline);

}  // namespace sluice::waypoint
