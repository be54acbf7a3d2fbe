// One attempt at one endpoint (see upstream_attempt.h).
#include "waypoint/upstream_attempt.h"

#include "waypoint/body_pump.h"
#include "waypoint/upstream_pool.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;

// HTTP/2 multiplexed on one tunnel per endpoint when the app speaks it (or, for a port of
// unknown protocol, when the client did); HTTP/1.1 otherwise. Upgrades (WebSocket) exist in
// HTTP/1.1 only.
bool speaksHttp2(UpstreamProtocol protocol, const DownstreamRequest& down) {
  return down.head().upgrade.empty() &&
         (protocol == UpstreamProtocol::kHttp2 ||
          (protocol == UpstreamProtocol::kAsDownstream && down.http2()));
}

}  // namespace

asio::awaitable<AttemptResult> attemptUpstream(UpstreamPool& pool, Deadlines& deadlines,
                                               const ProxiedRequest& x, const Endpoint& endpoint,
                                               const UpstreamRequest& request, BodyPump& pump,
                                               AttemptDeadline deadline) {
  // Bytes after an upgrade request's head are the new protocol's: never buffered, never retried.
  const bool upgrade = !x.down.head().upgrade.empty();
  const bool http2 = speaksHttp2(x.cluster->protocol, x.down);
  AttemptResult result;
  for (bool fresh = false;;) {
    bool reused = false;
    auto opened = co_await pool.call(endpoint, x.who, http2, x.cluster->reuse, fresh, reused);
    if (!opened) {
      result.failure = opened.message();
      result.outcome = AttemptOutcome::connectFailure();
      break;
    }
    result.up = std::move(*opened);
    UpstreamCall& up = *result.up;
    Watchdog watchdog(deadlines, deadline.at, &up);
    error_code ec;
    if (upgrade)
      co_await up.start(request, {}, true, ec);
    else
      co_await pump.attach(result.up, request, ec);
    if (!ec) ec = co_await up.readHead();
    if (pump.failed()) {
      up.abort();
      pump.detach();
      result.request_failed = true;
      break;
    }
    if (!ec) {
      result.outcome = AttemptOutcome::response(up.status, up.grpc_status);
      break;
    }
    if (watchdog.fired()) {
      result.outcome = AttemptOutcome::perTryTimeout();
      result.failure = deadline.kind == DeadlineKind::kTotal ? "upstream request timeout"
                                                             : "upstream per-try timeout";
      break;
    }
    // A pooled connection the app had closed, or a refused stream: the request never reached
    // the app, so it goes once more on a new connection (not an attempt; a fresh call is
    // never `reused`, so this happens once).
    if (reused && !upgrade && pump.replayable() && up.neverSent(ec)) {
      pump.detach();
      fresh = true;
      continue;
    }
    result.outcome = AttemptOutcome::reset();
    result.failure =
        "upstream reset before response headers: " + (up.error.empty() ? ec.message() : up.error);
    break;
  }
  co_return result;
}

}  // namespace sluice::waypoint
