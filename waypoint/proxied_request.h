// ProxiedRequest: one downstream request as the proxy handles it: the request, what was decided
// for it (service, route, cluster) and what became of it (status, flags, attempts, bytes), which
// telemetry reports at the end. The proxy's request flow and the router share it. Also here: the
// answers the waypoint gives itself (errors, policy decisions, redirects), in HTTP or gRPC form.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/telemetry/response_flags.h"
#include "waypoint/exchange.h"
#include "waypoint/policy/deadline.h"
#include "waypoint/proxy_options.h"
#include "waypoint/service_routes.h"

namespace sluice::waypoint {

// One request and what became of it.
struct ProxiedRequest {
  ProxiedRequest(DownstreamRequest& d, const Downstream& w, std::shared_ptr<const RouteConfig> rc)
      : down(d), who(w), routes(std::move(rc)) {}
  DownstreamRequest& down;
  const Downstream& who;
  std::shared_ptr<const RouteConfig> routes;
  Clock::time_point start = Clock::now();

  // The request. Its head is the downstream's, never changed. What is judged and forwarded is the
  // normalized target (policy/request_target.h) and the one host it names: `view` points there.
  std::string path, host;
  std::string normalized_target;
  bool host_from_target = false;  // an absolute-form target's authority replaced Host
  RequestView view;
  uint64_t request_bytes = 0;
  bool grpc = false;  // content-type application/grpc*: reported as such
  const std::string& method() const { return down.head().method; }
  const std::string& target() const { return normalized_target; }
  const HeaderList& headers() const { return down.head().headers; }
  bool continue_answered = false;  // the waypoint answered Expect: 100-continue: not forwarded

  // Decisions.
  const ServiceRoutes* service = nullptr;
  const RouteAction* action = nullptr;
  const WeightedCluster* weighted = nullptr;
  const Cluster* cluster = nullptr;

  // The outcome, for telemetry.
  int status = 0;
  telemetry::ResponseFlags flags;
  std::string error;       // why the waypoint answered itself (access log)
  std::string reply_body;  // what it answered with
  uint32_t attempts = 0;
  std::string upstream;
  const Endpoint* endpoint = nullptr;
  uint64_t response_bytes = 0;
  std::string request_id, traceparent;
};

// Answers the request itself (errors, policy decisions, redirects) with x's reply_body;
// returns whether the downstream connection can go on.
boost::asio::awaitable<bool> respond(ProxiedRequest& x, int status, telemetry::ResponseFlags flags,
                                     const HeaderList* extra = nullptr);
// respond() with x's error as the body.
boost::asio::awaitable<void> fail(ProxiedRequest& x, int status, telemetry::ResponseFlags flags);

}  // namespace sluice::waypoint
