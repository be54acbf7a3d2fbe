// The waypoint's compiled view of the configuration: for each service VIP:port it serves, the
// route table (VirtualService or HTTPRoute, else a default route to the service itself), what
// each route does, the clusters (service + subset + port, with their endpoints and traffic
// policy from the DestinationRule) and the L7 AuthorizationPolicies that apply.
//
// Compiling is pure (a snapshot in, a RouteConfig out) and happens once per configuration
// version; serving a request only reads it. A document the compiler cannot use (a regex RE2
// rejects, a destination that names no service) is reported as a problem naming the object,
// and the rest still compiles: one bad route never takes a service's traffic down.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config/snapshot.h"
#include "core/identity/spiffe_id.h"
#include "core/telemetry/workload_labels.h"
#include "waypoint/policy/authorization.h"
#include "waypoint/policy/circuit_breaker.h"
#include "waypoint/policy/deadline.h"
#include "waypoint/policy/fault.h"
#include "waypoint/policy/load_balancer.h"
#include "waypoint/policy/match.h"
#include "waypoint/policy/outlier_detector.h"
#include "waypoint/policy/retry_policy.h"

namespace sluice::waypoint {

inline constexpr uint16_t kHbonePort = 15008;

// Header manipulation, applied in order remove, set, add (Istio's).
struct HeaderEdits {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

// One pod behind a cluster.
struct Endpoint {
  boost::asio::ip::tcp::endpoint address;  // pod IP : target port (the :authority to ask for)
  boost::asio::ip::tcp::endpoint hbone;    // pod IP : 15008
  identity::SpiffeId identity;             // the pod's, checked on the HBONE connection
  // Enrolled, so its ztunnel takes HBONE on `hbone`. A pod outside the mesh (namespace not
  // ambient, or opted out) has nobody there: it gets plain TCP to `address`, as Istio's waypoints
  // send to workloads outside the mesh.
  bool meshed = true;
  std::string workload;              // "ns/name"
  telemetry::WorkloadLabels labels;  // destination_* of its requests' metrics
};

// outbound|<port>|<subset>|<host>: Envoy's and Istio's cluster naming, which shows in metrics.
// What the app speaks, by Istio's protocol selection (appProtocol, else the port name's prefix):
// HTTP/2 for grpc, http2 and h2c; HTTP/1.1 for http; otherwise whatever the client spoke.
enum class UpstreamProtocol { kHttp1, kHttp2, kAsDownstream };

// How long a pooled upstream connection lives (DestinationRule connectionPool.http): closed
// once unused for `idle_timeout` (Istio's default: 1 h; 0 keeps it), and after carrying
// `max_requests` requests (0: no limit).
struct ConnectionReuse {
  static constexpr std::chrono::milliseconds kDefaultIdleTimeout = std::chrono::hours(1);
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
  uint32_t max_requests = 0;
};

struct Cluster {
  std::string name;
  std::string service_host;  // FQDN, e.g. reviews.shop.svc.cluster.local
  std::string service_name, service_ns;
  std::string subset;
  uint16_t port = 0;  // the service port
  std::vector<Endpoint> endpoints;
  LbPolicy lb = LbPolicy::kRoundRobin;
  std::optional<HashKeySource> hash;     // consistent hash key, with lb = kRingHash
  std::optional<OutlierConfig> outlier;  // nullopt: outlier detection off
  CircuitBreakerLimits limits;
  ConnectionReuse reuse;
  UpstreamProtocol protocol = UpstreamProtocol::kAsDownstream;
};

struct WeightedCluster {
  size_t cluster = 0;  // index into RouteConfig::clusters
  uint32_t weight = 0;
  HeaderEdits request_headers, response_headers;
};

struct Redirect {
  int status = 301;
  std::string scheme, host, path;  // empty: keep the request's
  std::optional<uint16_t> port;
};

struct DirectResponse {
  int status = 200;
  std::string body;
};

// What a matched route does: answer directly, redirect, or forward to weighted clusters.
struct RouteAction {
  std::string name;  // the route's name, for logs
  std::vector<WeightedCluster> clusters;
  std::optional<Redirect> redirect;
  std::optional<DirectResponse> direct_response;
  std::string rewrite_prefix;  // replaces the matched prefix when set (with prefix_matched)
  std::string prefix_matched;
  std::string rewrite_authority;
  Timeouts timeouts;
  RetryPolicy retry = RetryPolicy::istioDefault();
  std::optional<FaultPolicy> fault;
  HeaderEdits request_headers, response_headers;
};

// Everything a request to one service port goes through.
struct ServiceRoutes {
  std::string host;  // FQDN of the service
  std::string name, ns;
  uint16_t port = 0;
  std::string source;  // "VirtualService shop/api", "HTTPRoute shop/api" or "default"
  // Whether the Service (or its Namespace) names this waypoint (sluice.dev/use-waypoint):
  // tunnels for other services are refused, as an Istio waypoint has no listener for them.
  bool bound = false;
  RouteTable table = RouteTable::firstMatch({});
  std::vector<RouteAction> actions;  // Route::action indexes these
  std::vector<AuthorizationPolicy> authorization;
};

struct RouteConfig {
  std::string trust_domain;
  std::map<boost::asio::ip::tcp::endpoint, ServiceRoutes> services;  // by VIP:port
  std::vector<Cluster> clusters;
  std::vector<std::string> problems;  // what could not be compiled, naming the object

  const ServiceRoutes* find(const boost::asio::ip::tcp::endpoint& vip) const {
    auto it = services.find(vip);
    return it == services.end() ? nullptr : &it->second;
  }
};

// The configuration as the waypoint `waypoint_ns/waypoint_name` serves it: every service with
// a cluster IP (so that any VIP a ztunnel sends here resolves; ztunnel decides which services
// use this waypoint). `hbone_port` is where endpoints take HBONE (15008 in a cluster; tests
// that run several endpoint ztunnels on one loopback address pick their own).
std::shared_ptr<const RouteConfig> compileRoutes(const config::Snapshot& snapshot,
                                                 std::string_view trust_domain,
                                                 std::string_view waypoint_ns,
                                                 std::string_view waypoint_name,
                                                 uint16_t hbone_port = kHbonePort);

}  // namespace sluice::waypoint
