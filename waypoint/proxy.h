// The waypoint's HTTP proxy on one worker: requests arrive in HBONE tunnels addressed to a
// service VIP:port, are authorized, routed, optionally faulted, and forwarded to an endpoint
// over HBONE with retries and timeouts; the response streams back. This is the request flow;
// its parts have files of their own: the attempts and retries (router.h, one attempt in
// upstream_attempt.h), the connections (upstream_pool.h) and the per-cluster state
// (cluster_state.h). Everything here runs on one executor (a connection never leaves its
// worker), so the per-cluster state (load balancer position, outlier ejections, circuit breaker
// counts) needs no locks.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/telemetry/access_log.h"
#include "core/telemetry/cluster_metrics.h"
#include "core/telemetry/request_metrics.h"
#include "waypoint/deadlines.h"
#include "waypoint/exchange.h"
#include "waypoint/http1.h"
#include "waypoint/http2.h"
#include "waypoint/proxy_options.h"
#include "waypoint/service_routes.h"

namespace sluice::waypoint {

class ClusterState;
struct ProxiedRequest;
class Router;
class UpstreamPool;

class Proxy {
 public:
  // Each of `metrics`, `cluster_metrics` and `access_log` may be null (not reported).
  Proxy(boost::asio::any_io_executor ex, ProxyOptions options, telemetry::RequestMetrics* metrics,
        telemetry::ClusterMetrics* cluster_metrics, telemetry::AccessLog* access_log);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Takes effect for requests that start afterwards; requests in flight keep the routes
  // they started with. Call on this proxy's executor.
  void setRoutes(std::shared_ptr<const RouteConfig> routes);

  // Serves one downstream connection until it ends: HTTP/2 when it starts with the HTTP/2
  // preface (prior knowledge, as gRPC and h2c clients send it), HTTP/1.1 otherwise.
  boost::asio::awaitable<void> serve(std::unique_ptr<ByteStream> downstream, Downstream who);

  // For tests and the admin page: the outlier state of a cluster's endpoints.
  std::vector<std::string> ejectedEndpoints(const std::string& cluster);

 private:
  boost::asio::awaitable<void> serveHttp1(std::unique_ptr<ByteStream> downstream, Downstream who,
                                          boost::beast::flat_buffer in);
  boost::asio::awaitable<void> serveHttp2(std::unique_ptr<ByteStream> downstream, Downstream who,
                                          std::string received);
  boost::asio::awaitable<void> serveStream(std::shared_ptr<h2::Stream> stream, Downstream who);

  // The cluster's load balancer, outlier and breaker state; `owner` is the config it belongs to.
  ClusterState& state(const Cluster& cluster, const std::shared_ptr<const RouteConfig>& owner);
  boost::asio::awaitable<bool> handle(ProxiedRequest& x);
  // The body pump around the router's attempts.
  boost::asio::awaitable<void> forward(ProxiedRequest& x);
  // Metrics and the access log, once the request is over.
  void finish(ProxiedRequest& x);

  boost::asio::any_io_executor ex_;
  Deadlines deadlines_;  // the attempts' and responses' timeouts
  ProxyOptions options_;
  telemetry::RequestMetrics* metrics_;
  telemetry::ClusterMetrics* cluster_metrics_;
  telemetry::AccessLog* access_log_;
  std::shared_ptr<const RouteConfig> routes_;
  std::unique_ptr<UpstreamPool> pool_;
  std::map<std::string, std::unique_ptr<ClusterState>> clusters_;
  std::mt19937_64 random_;
  std::unique_ptr<Router> router_;  // refers to deadlines_, pool_ and random_
};

}  // namespace sluice::waypoint
