// Compiling VirtualService / HTTPRoute / DestinationRule / AuthorizationPolicy into the
// waypoint's RouteConfig (see service_routes.h).
#include "waypoint/service_routes.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>

#include "core/config/service_rules.h"
#include "core/config/waypoint_binding.h"
#include "core/telemetry/workload_labels.h"

namespace sluice::waypoint {
namespace {

using boost::asio::ip::tcp;
namespace cfg = sluice::config;

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

UpstreamProtocol upstreamProtocol(const cfg::ServicePort& port) {
  std::string_view protocol =
      port.app_protocol.empty() ? std::string_view(port.name) : std::string_view(port.app_protocol);
  for (std::string_view prefix : {"grpc", "http2", "h2c", "kubernetes.io/h2c"})
    if (protocol.starts_with(prefix)) return UpstreamProtocol::kHttp2;
  if (protocol.starts_with("http")) return UpstreamProtocol::kHttp1;
  return UpstreamProtocol::kAsDownstream;
}

HeaderEdits editsFrom(const cfg::HeaderOperations& ops) {
  HeaderEdits out;
  out.set.assign(ops.set.begin(), ops.set.end());
  out.add.assign(ops.add.begin(), ops.add.end());
  out.remove = ops.remove;
  return out;
}

void append(HeaderEdits& into, const HeaderEdits& more) {
  into.set.insert(into.set.end(), more.set.begin(), more.set.end());
  into.add.insert(into.add.end(), more.add.begin(), more.add.end());
  into.remove.insert(into.remove.end(), more.remove.begin(), more.remove.end());
}

// Field-level merge of Istio's traffic policies: a more specific one (subset, port) replaces
// whole top-level fields of the general one.
cfg::TrafficPolicy overlay(cfg::TrafficPolicy base, const cfg::TrafficPolicy& specific) {
  if (specific.load_balancer) base.load_balancer = specific.load_balancer;
  if (specific.connection_pool) base.connection_pool = specific.connection_pool;
  if (specific.outlier_detection) base.outlier_detection = specific.outlier_detection;
  if (!specific.tls_mode.empty()) base.tls_mode = specific.tls_mode;
  return base;
}

const cfg::TrafficPolicy* portPolicy(const std::vector<cfg::PortTrafficPolicy>& list,
                                     uint16_t port) {
  for (const auto& entry : list)
    if (entry.port == port) return &entry.policy;
  return nullptr;
}

void applyTrafficPolicy(const cfg::TrafficPolicy& policy, Cluster& cluster) {
  if (const auto& lb = policy.load_balancer) {
    if (lb->simple) {
      switch (*lb->simple) {
        case cfg::LoadBalancer::kLeastRequest:
          cluster.lb = LbPolicy::kLeastRequest;
          break;
        case cfg::LoadBalancer::kRandom:
          cluster.lb = LbPolicy::kRandom;
          break;
        default:
          cluster.lb = LbPolicy::kRoundRobin;  // ROUND_ROBIN, UNSPECIFIED, PASSTHROUGH
      }
    } else if (lb->consistent_hash) {
      cluster.lb = LbPolicy::kRingHash;
      HashKeySource key;
      switch (lb->consistent_hash->key) {
        case cfg::ConsistentHash::Key::kHeader:
          key.kind = HashKeySource::Kind::kHeader;
          break;
        case cfg::ConsistentHash::Key::kCookie:
          key.kind = HashKeySource::Kind::kCookie;
          break;
        case cfg::ConsistentHash::Key::kSourceIp:
          key.kind = HashKeySource::Kind::kSourceIp;
          break;
        case cfg::ConsistentHash::Key::kQueryParameter:
          key.kind = HashKeySource::Kind::kQueryParam;
          break;
      }
      key.name = lb->consistent_hash->name;
      cluster.hash = key;
    }
  }
  if (const auto& od = policy.outlier_detection) {
    OutlierConfig outlier;
    if (od->consecutive_5xx_errors) outlier.consecutive_5xx = *od->consecutive_5xx_errors;
    if (od->consecutive_gateway_errors)
      outlier.consecutive_gateway_errors = *od->consecutive_gateway_errors;
    if (od->base_ejection_time) outlier.base_ejection_time = *od->base_ejection_time;
    if (od->max_ejection_percent) outlier.max_ejection_percent = *od->max_ejection_percent;
    cluster.outlier = outlier;
  }
  if (const auto& pool = policy.connection_pool) {
    if (pool->http1_max_pending_requests)
      cluster.limits.max_pending_requests = *pool->http1_max_pending_requests;
    if (pool->http2_max_requests) cluster.limits.max_requests = *pool->http2_max_requests;
    if (pool->max_retries) cluster.limits.max_retries = *pool->max_retries;
    if (pool->idle_timeout) cluster.reuse.idle_timeout = *pool->idle_timeout;
    if (pool->max_requests_per_connection)
      cluster.reuse.max_requests = *pool->max_requests_per_connection;
  }
}

std::optional<StringMatcher> matcherFrom(const std::optional<cfg::StringMatch>& match,
                                         bool ignore_case, std::vector<std::string>& problems,
                                         const std::string& where) {
  if (!match) return std::nullopt;
  StringMatcher::Kind kind = StringMatcher::Kind::kExact;
  switch (match->type) {
    case cfg::StringMatch::Type::kPrefix:
      kind = StringMatcher::Kind::kPrefix;
      break;
    case cfg::StringMatch::Type::kRegex:
      kind = StringMatcher::Kind::kRegex;
      break;
    case cfg::StringMatch::Type::kPresent:
      return StringMatcher::prefix("", ignore_case);  // any value
    case cfg::StringMatch::Type::kExact:
      break;
  }
  auto made = StringMatcher::create(kind, match->value, ignore_case);
  if (!made) {
    problems.push_back(where + ": " + made.message());
    return std::nullopt;
  }
  return std::move(*made);
}

ValueMatch valueMatchFrom(const std::string& name, const cfg::StringMatch& match, bool invert,
                          std::vector<std::string>& problems, const std::string& where) {
  ValueMatch out;
  out.name = name;
  out.invert = invert;
  if (match.type == cfg::StringMatch::Type::kPresent) {
    out.mode = ValueMatch::Mode::kPresent;
  } else {
    out.mode = ValueMatch::Mode::kValue;
    out.value = matcherFrom(match, false, problems, where + " " + name);
  }
  return out;
}

class Compiler {
 public:
  Compiler(const cfg::Snapshot& snapshot, std::string_view trust_domain,
           std::string_view waypoint_ns, std::string_view waypoint_name, uint16_t hbone_port)
      : snapshot_(snapshot),
        waypoint_ns_(waypoint_ns),
        waypoint_name_(waypoint_name),
        hbone_port_(hbone_port),
        out_(std::make_shared<RouteConfig>()) {
    out_->trust_domain = trust_domain;
  }

  std::shared_ptr<const RouteConfig> compile() {
    out_->problems = snapshot_.destinationRuleConflicts();
    for (const cfg::Service& service : snapshot_.services()) {
      if (service.cluster_ips.empty()) continue;
      for (const cfg::ServicePort& port : service.ports) {
        if (port.protocol != "TCP") continue;
        // Per family of VIP: a VIP's endpoints are the pods' addresses of its family (one
        // EndpointSlice per family in Kubernetes), as ztunnel resolves them. A dual-stack
        // service's second family reports no problem the first did not.
        std::optional<ServiceRoutes> by_family[2];
        for (const auto& vip : service.cluster_ips) {
          auto& routes = by_family[vip.is_v6()];
          if (!routes) {
            const size_t problems = out_->problems.size();
            family_ = vip;
            routes = compileService(service, port);
            if (by_family[!vip.is_v6()]) out_->problems.resize(problems);
          }
          out_->services[{vip, port.port}] = *routes;
        }
      }
    }
    return out_;
  }

 private:
  const cfg::Service* serviceByHost(std::string_view host, std::string_view ns) const {
    const std::string fqdn = cfg::serviceFqdn(host, ns);
    for (const cfg::Service& service : snapshot_.services())
      if (cfg::serviceFqdn(service.meta.name, service.meta.ns) == fqdn) return &service;
    return nullptr;
  }

  // The cluster for (service, port, subset), made on first use.
  std::optional<size_t> cluster(const cfg::Service& service, uint16_t port,
                                const std::string& subset, const std::string& where) {
    const cfg::ServicePort* service_port = nullptr;
    for (const auto& p : service.ports)
      if (p.port == port) service_port = &p;
    if (service_port == nullptr) {
      out_->problems.push_back(where + ": service " + service.meta.ns + "/" + service.meta.name +
                               " has no port " + std::to_string(port));
      return std::nullopt;
    }
    const std::string host = cfg::serviceFqdn(service.meta.name, service.meta.ns);
    const std::string name = "outbound|" + std::to_string(port) + "|" + subset + "|" + host;
    const std::string key = name + (family_.is_v6() ? "|ipv6" : "|ipv4");
    if (auto it = cluster_index_.find(key); it != cluster_index_.end()) return it->second;

    Cluster cluster;
    cluster.name = name;
    cluster.service_host = host;
    cluster.service_name = service.meta.name;
    cluster.service_ns = service.meta.ns;
    cluster.subset = subset;
    cluster.port = port;
    cluster.protocol = upstreamProtocol(*service_port);

    const cfg::DestinationRule* rule = destinationRuleFor(service.meta.ns, host);
    const std::map<std::string, std::string>* subset_labels = nullptr;
    cfg::TrafficPolicy policy;
    if (rule != nullptr) {
      if (rule->traffic_policy) policy = *rule->traffic_policy;
      if (const auto* p = portPolicy(rule->port_level_settings, port)) policy = overlay(policy, *p);
    }
    if (!subset.empty()) {
      const cfg::DestinationRuleSubset* found = nullptr;
      if (rule != nullptr)
        for (const auto& s : rule->subsets)
          if (s.name == subset) found = &s;
      if (found == nullptr) {
        // Istio answers 503 (no healthy upstream) for an unknown subset: keep the cluster empty.
        out_->problems.push_back(where + ": no DestinationRule subset \"" + subset + "\" for " +
                                 host);
      } else {
        subset_labels = &found->labels;
        if (found->traffic_policy) policy = overlay(policy, *found->traffic_policy);
        if (const auto* p = portPolicy(found->port_level_settings, port))
          policy = overlay(policy, *p);
      }
    }
    applyTrafficPolicy(policy, cluster);

    if (subset.empty() || subset_labels != nullptr) {
      for (const cfg::Pod* pod : snapshot_.endpoints(service)) {
        if (subset_labels != nullptr &&
            !std::all_of(subset_labels->begin(), subset_labels->end(), [&](const auto& label) {
              auto it = pod->meta.labels.find(label.first);
              return it != pod->meta.labels.end() && it->second == label.second;
            }))
          continue;
        auto target = cfg::resolveTargetPort(*service_port, *pod);
        auto address = cfg::endpointAddress(*pod, family_);
        auto id = cfg::workloadIdentity(*pod, out_->trust_domain);
        if (!target || !address || !id) continue;
        Endpoint endpoint;
        endpoint.address = {*address, *target};
        endpoint.hbone = {*address, hbone_port_};
        endpoint.meshed = snapshot_.isMeshed(*pod);
        endpoint.identity = *id;
        endpoint.workload = pod->meta.ns + "/" + pod->meta.name;
        // Only an HBONE connection proves who the app is.
        endpoint.labels =
            telemetry::workloadLabels(*pod, endpoint.meshed ? id->str() : std::string());
        cluster.endpoints.push_back(std::move(endpoint));
      }
    }
    out_->clusters.push_back(std::move(cluster));
    cluster_index_[key] = out_->clusters.size() - 1;
    return out_->clusters.size() - 1;
  }

  ServiceRoutes compileService(const cfg::Service& service, const cfg::ServicePort& port) {
    ServiceRoutes routes;
    routes.host = cfg::serviceFqdn(service.meta.name, service.meta.ns);
    routes.name = service.meta.name;
    routes.ns = service.meta.ns;
    routes.port = port.port;
    routes.authorization = authorizationFor(service);
    auto waypoint = cfg::waypointFor(snapshot_, service);
    routes.bound = waypoint && waypoint->ns == waypoint_ns_ && waypoint->name == waypoint_name_;

    if (const cfg::VirtualService* vs = virtualServiceFor(service)) {
      if (compileVirtualService(*vs, service, port, routes)) return routes;
    }
    if (compileHttpRoutes(service, port, routes)) return routes;

    routes.source = "default";
    RouteAction action;
    action.name = "default";
    if (auto c = cluster(service, port.port, "", "service " + routes.host))
      action.clusters.push_back({*c, 1, {}, {}});
    routes.actions.push_back(std::move(action));
    routes.table = RouteTable::firstMatch({Route{"default", {}, 0}});
    return routes;
  }

  // ---- VirtualService --------------------------------------------------------------------

  // How closely `host` of a VirtualService in `ns` names the service `fqdn`: 0 not at all, then
  // by the length of a wildcard's suffix ("*" the least), an exact name the most (Istio's
  // precedence). Wildcards are not qualified: "*.shop" covers no cluster.local name.
  static size_t hostPrecedence(const std::string& host, const std::string& ns,
                               const std::string& fqdn) {
    if (host == "*") return 1;
    if (host.starts_with("*."))
      return endsWith(fqdn, std::string_view(host).substr(1)) ? host.size() : 0;
    return cfg::serviceFqdn(host, ns) == fqdn ? std::numeric_limits<size_t>::max() : 0;
  }

  // Whether this waypoint sees an object of namespace `ns` with this exportTo: empty or "*" is
  // every namespace, "." the object's own.
  bool visible(const std::vector<std::string>& export_to, const std::string& ns) const {
    if (export_to.empty()) return true;
    return std::any_of(export_to.begin(), export_to.end(), [&](const std::string& to) {
      return to == "*" || to == waypoint_ns_ || (to == "." && ns == waypoint_ns_);
    });
  }

  // The DestinationRule for `host` along Istio's lookup path for a proxy, which the waypoint
  // is: its own namespace, then the service's, then the root namespace (mesh-wide defaults);
  // the first rule exported to the waypoint's namespace.
  const cfg::DestinationRule* destinationRuleFor(const std::string& service_ns,
                                                 const std::string& host) const {
    for (const std::string& ns : {waypoint_ns_, service_ns, snapshot_.options().root_namespace}) {
      const cfg::DestinationRule* rule = snapshot_.destinationRule(ns, host);
      if (rule != nullptr && visible(rule->export_to, rule->meta.ns)) return rule;
    }
    return nullptr;
  }

  // The mesh VirtualService that routes `service`: the one whose host names it most closely.
  // Of several that name it equally the oldest wins and the others are a problem, as in Istio
  // (IST0109), which merges VirtualServices only for ingress gateways.
  const cfg::VirtualService* virtualServiceFor(const cfg::Service& service) {
    const std::string fqdn = cfg::serviceFqdn(service.meta.name, service.meta.ns);
    const cfg::VirtualService* best = nullptr;
    size_t best_precedence = 0;
    std::vector<const cfg::VirtualService*> shadowed;
    for (const cfg::VirtualService& vs : snapshot_.virtualServices()) {
      bool for_mesh = vs.gateways.empty() || std::find(vs.gateways.begin(), vs.gateways.end(),
                                                       "mesh") != vs.gateways.end();
      if (!for_mesh || !visible(vs.export_to, vs.meta.ns)) continue;
      size_t precedence = 0;
      for (const std::string& host : vs.hosts)
        precedence = std::max(precedence, hostPrecedence(host, vs.meta.ns, fqdn));
      if (precedence == 0 || precedence < best_precedence) continue;
      if (precedence > best_precedence) {
        shadowed.clear();
      } else if (cfg::olderThan(best->meta, vs.meta)) {
        shadowed.push_back(&vs);
        continue;
      } else {
        shadowed.push_back(best);
      }
      best = &vs;
      best_precedence = precedence;
    }
    if (!shadowed.empty() && reported_conflicts_.insert(fqdn).second) {
      std::string names;
      for (const auto* vs : shadowed) names += " " + vs->meta.ns + "/" + vs->meta.name;
      out_->problems.push_back("VirtualService " + best->meta.ns + "/" + best->meta.name +
                               " routes " + fqdn + "; also naming it, and ignored:" + names);
    }
    return best;
  }

  bool compileVirtualService(const cfg::VirtualService& vs, const cfg::Service& service,
                             const cfg::ServicePort& port, ServiceRoutes& routes) {
    const std::string where = "VirtualService " + vs.meta.ns + "/" + vs.meta.name;
    std::vector<Route> table;
    for (size_t i = 0; i < vs.http.size(); ++i) {
      const cfg::VirtualServiceRoute& http = vs.http[i];
      const std::string route_where =
          where + " http[" + std::to_string(i) + "]" + (http.name.empty() ? "" : " " + http.name);
      Route route;
      route.name = http.name.empty() ? "http[" + std::to_string(i) + "]" : http.name;
      bool usable = true;
      bool any_match_for_port = http.match.empty();
      for (const cfg::HttpMatchRequest& m : http.match) {
        if (m.port && *m.port != port.port) continue;  // a match for another service port
        any_match_for_port = true;
        size_t before = out_->problems.size();
        RouteMatch match;
        match.path = matcherFrom(m.uri, m.ignore_uri_case, out_->problems, route_where + " uri");
        match.method = matcherFrom(m.method, false, out_->problems, route_where + " method");
        match.authority =
            matcherFrom(m.authority, true, out_->problems, route_where + " authority");
        match.scheme = matcherFrom(m.scheme, false, out_->problems, route_where + " scheme");
        for (const auto& [name, value] : m.headers)
          match.headers.push_back(valueMatchFrom(name, value, false, out_->problems, route_where));
        for (const auto& [name, value] : m.without_headers)
          match.headers.push_back(valueMatchFrom(name, value, true, out_->problems, route_where));
        for (const auto& [name, value] : m.query_params)
          match.query_params.push_back(
              valueMatchFrom(name, value, false, out_->problems, route_where));
        if (out_->problems.size() != before) usable = false;
        route.matches.push_back(std::move(match));
      }
      if (!usable || !any_match_for_port) continue;

      RouteAction action;
      action.name = route.name;
      action.request_headers = editsFrom(http.headers.request);
      action.response_headers = editsFrom(http.headers.response);
      if (http.timeout) action.timeouts.total = *http.timeout;
      if (http.retries) {
        RetrySpec spec;
        spec.attempts = http.retries->attempts;
        spec.per_try_timeout = http.retries->per_try_timeout;
        std::string tokens;
        for (const auto& token : http.retries->retry_on)
          tokens += (tokens.empty() ? "" : ",") + token;
        for (uint16_t status : http.retries->retry_on_statuses)
          tokens += (tokens.empty() ? "" : ",") + std::to_string(status);
        if (!tokens.empty()) spec.retry_on = tokens;
        auto policy = retryPolicyFrom(spec);
        if (!policy) {
          out_->problems.push_back(route_where + " retries: " + policy.message());
          continue;
        }
        action.retry = *policy;
        action.timeouts.per_try = action.retry.per_try_timeout;
      }
      if (http.fault) {
        std::optional<DelayFault> delay;
        std::optional<AbortFault> abort;
        if (http.fault->delay)
          delay = DelayFault{http.fault->delay->fixed_delay,
                             http.fault->delay->percentage.value_or(100.0)};
        if (http.fault->abort && http.fault->abort->http_status)
          abort = AbortFault{*http.fault->abort->http_status, std::nullopt,
                             http.fault->abort->percentage.value_or(100.0)};
        auto fault = FaultPolicy::create(delay, abort);
        if (!fault) {
          out_->problems.push_back(route_where + " fault: " + fault.message());
          continue;
        }
        action.fault = std::move(*fault);
      }
      if (http.redirect) {
        Redirect redirect;
        redirect.status = http.redirect->redirect_code;
        redirect.scheme = http.redirect->scheme;
        redirect.host = http.redirect->authority;
        redirect.path = http.redirect->uri;
        redirect.port = http.redirect->port;
        action.redirect = redirect;
      }
      if (http.direct_response)
        action.direct_response =
            DirectResponse{http.direct_response->status, http.direct_response->body};
      if (http.rewrite) {
        action.rewrite_authority = http.rewrite->authority;
        if (!http.rewrite->uri.empty()) {
          action.rewrite_prefix = http.rewrite->uri;
          // Istio rewrites the part a prefix match matched; for other matches, the whole path.
          for (const cfg::HttpMatchRequest& m : http.match)
            if (m.uri && m.uri->type == cfg::StringMatch::Type::kPrefix)
              action.prefix_matched = m.uri->value;
        }
      }
      std::vector<uint32_t> weights;
      bool any_weight = std::any_of(http.route.begin(), http.route.end(),
                                    [](const auto& d) { return d.weight.has_value(); });
      for (const cfg::HttpRouteDestination& d : http.route) {
        const cfg::Service* target = serviceByHost(d.destination.host, vs.meta.ns);
        if (target == nullptr) {
          out_->problems.push_back(route_where + ": destination host \"" + d.destination.host +
                                   "\" is not a known service");
          continue;
        }
        uint16_t target_port = d.destination.port.value_or(
            target == &service ? port.port
                               : (target->ports.empty() ? port.port : target->ports.front().port));
        auto c = cluster(*target, target_port, d.destination.subset, route_where);
        if (!c) continue;
        WeightedCluster weighted;
        weighted.cluster = *c;
        weighted.weight = any_weight ? d.weight.value_or(0) : 1;
        weighted.request_headers = editsFrom(d.headers.request);
        weighted.response_headers = editsFrom(d.headers.response);
        action.clusters.push_back(std::move(weighted));
      }
      if (action.clusters.empty() && !action.redirect && !action.direct_response) {
        out_->problems.push_back(route_where + ": no usable destination");
        continue;
      }
      route.action = routes.actions.size();
      routes.actions.push_back(std::move(action));
      table.push_back(std::move(route));
    }
    if (table.empty()) return false;
    routes.source = where;
    routes.table = RouteTable::firstMatch(std::move(table));
    return true;
  }

  // ---- HTTPRoute (Gateway API, GAMMA: parentRef is the Service) --------------------------

  bool compileHttpRoutes(const cfg::Service& service, const cfg::ServicePort& port,
                         ServiceRoutes& routes) {
    std::vector<Route> table;
    std::string sources;
    for (const cfg::HTTPRoute& http_route : snapshot_.httpRoutes()) {
      bool attached = false;
      for (const cfg::ObjectReference& parent : http_route.parent_refs) {
        const std::string& ns = parent.ns.empty() ? http_route.meta.ns : parent.ns;
        bool names_service = parent.kind == "Service" && parent.name == service.meta.name &&
                             ns == service.meta.ns && (!parent.port || *parent.port == port.port);
        if (names_service) attached = true;
      }
      if (!attached) continue;
      const std::string where = "HTTPRoute " + http_route.meta.ns + "/" + http_route.meta.name;
      sources += (sources.empty() ? "" : ", ") + where;
      for (size_t r = 0; r < http_route.rules.size(); ++r) {
        const cfg::HttpRouteRule& rule = http_route.rules[r];
        const std::string rule_where = where + " rules[" + std::to_string(r) + "]";
        Route route;
        route.name = rule.name.empty() ? http_route.meta.name + "/" + std::to_string(r) : rule.name;
        size_t before = out_->problems.size();
        for (const cfg::HttpRouteMatch& m : rule.matches)
          route.matches.push_back(matchFrom(m, rule_where));
        if (out_->problems.size() != before) continue;

        RouteAction action;
        action.name = route.name;
        action.retry = RetryPolicy::istioDefault();
        if (rule.request_timeout) action.timeouts.total = *rule.request_timeout;
        if (rule.backend_request_timeout) action.timeouts.per_try = *rule.backend_request_timeout;
        for (const cfg::HttpRouteFilter& filter : rule.filters) {
          applyFilter(filter, action);
          // ReplacePrefixMatch replaces what the rule's PathPrefix matched and keeps the rest;
          // without prefix_matched the proxy would replace the whole path (ReplaceFullPath).
          if (filter.type == cfg::HttpRouteFilter::Type::kUrlRewrite && filter.path &&
              filter.path->type == "ReplacePrefixMatch") {
            for (const cfg::HttpRouteMatch& m : rule.matches)
              if (m.path_type == cfg::GatewayMatchType::kPathPrefix) {
                action.prefix_matched = m.path;
                break;
              }
          }
        }
        for (const cfg::HttpBackendRef& backend : rule.backend_refs) {
          const std::string& ns = backend.ref.ns.empty() ? http_route.meta.ns : backend.ref.ns;
          const cfg::Service* target =
              backend.ref.kind == "Service" ? snapshot_.service(ns, backend.ref.name) : nullptr;
          if (target == nullptr) {
            out_->problems.push_back(rule_where + ": backendRef " + ns + "/" + backend.ref.name +
                                     " is not a known Service");
            continue;
          }
          auto c = cluster(*target, backend.ref.port.value_or(port.port), "", rule_where);
          if (!c) continue;
          WeightedCluster weighted{*c, backend.weight, {}, {}};
          RouteAction per_backend;
          for (const auto& filter : backend.filters) applyFilter(filter, per_backend);
          weighted.request_headers = per_backend.request_headers;
          weighted.response_headers = per_backend.response_headers;
          action.clusters.push_back(std::move(weighted));
        }
        if (action.clusters.empty() && !action.redirect) {
          // The spec: a rule whose backends cannot be resolved answers 500.
          action.direct_response = DirectResponse{500, "no usable backend for this route\n"};
        }
        route.action = routes.actions.size();
        routes.actions.push_back(std::move(action));
        table.push_back(std::move(route));
      }
    }
    if (table.empty()) return false;
    routes.source = sources;
    routes.table = RouteTable::gatewayPrecedence(std::move(table));
    return true;
  }

  RouteMatch matchFrom(const cfg::HttpRouteMatch& m, const std::string& where) {
    RouteMatch match;
    auto make = [&](cfg::GatewayMatchType type, const std::string& value,
                    bool path) -> std::optional<StringMatcher> {
      StringMatcher::Kind kind = StringMatcher::Kind::kExact;
      if (type == cfg::GatewayMatchType::kPathPrefix)
        kind = path ? StringMatcher::Kind::kPathPrefix : StringMatcher::Kind::kPrefix;
      if (type == cfg::GatewayMatchType::kRegularExpression) kind = StringMatcher::Kind::kRegex;
      auto made = StringMatcher::create(kind, value);
      if (!made) {
        out_->problems.push_back(where + ": " + made.message());
        return std::nullopt;
      }
      return std::move(*made);
    };
    match.path = make(m.path_type, m.path, true);
    if (!m.method.empty()) match.method = StringMatcher::exact(m.method);
    for (const auto& h : m.headers) {
      ValueMatch v;
      v.name = h.name;
      v.mode = ValueMatch::Mode::kValue;
      v.value = make(h.type, h.value, false);
      match.headers.push_back(std::move(v));
    }
    for (const auto& q : m.query_params) {
      ValueMatch v;
      v.name = q.name;
      v.mode = ValueMatch::Mode::kValue;
      v.value = make(q.type, q.value, false);
      match.query_params.push_back(std::move(v));
    }
    return match;
  }

  static void applyFilter(const cfg::HttpRouteFilter& filter, RouteAction& action) {
    using Type = cfg::HttpRouteFilter::Type;
    switch (filter.type) {
      case Type::kRequestHeaderModifier:
        append(action.request_headers, editsFrom(filter.headers));
        break;
      case Type::kResponseHeaderModifier:
        append(action.response_headers, editsFrom(filter.headers));
        break;
      case Type::kRequestRedirect: {
        Redirect redirect;
        redirect.status = filter.status_code;
        redirect.scheme = filter.scheme;
        redirect.host = filter.hostname;
        if (filter.path) redirect.path = filter.path->value;
        redirect.port = filter.port;
        action.redirect = redirect;
        break;
      }
      case Type::kUrlRewrite:
        action.rewrite_authority = filter.hostname;
        if (filter.path) action.rewrite_prefix = filter.path->value;
        break;
      case Type::kRequestMirror:
      case Type::kExtensionRef:
        break;  // accepted, not acted on (docs/configuration.md)
    }
  }

  // ---- AuthorizationPolicy (attached with targetRefs to the Service or the waypoint) -----

  std::vector<AuthorizationPolicy> authorizationFor(const cfg::Service& service) {
    std::vector<AuthorizationPolicy> out;
    for (const cfg::AuthorizationPolicy& policy : snapshot_.authorizationPolicies()) {
      bool applies = false;
      for (const cfg::ObjectReference& ref : policy.target_refs) {
        const std::string& ns = ref.ns.empty() ? policy.meta.ns : ref.ns;
        if (ref.kind == "Service" && ref.name == service.meta.name && ns == service.meta.ns)
          applies = true;
        if (ref.kind == "Gateway" && ref.name == waypoint_name_ && ns == waypoint_ns_)
          applies = true;
      }
      if (!applies) continue;
      auto compiled = compilePolicy(policy);
      if (compiled) out.push_back(std::move(*compiled));
    }
    return out;
  }

  std::optional<AuthorizationPolicy> compilePolicy(const cfg::AuthorizationPolicy& policy) {
    const std::string where = "AuthorizationPolicy " + policy.meta.ns + "/" + policy.meta.name;
    AuthorizationPolicy out;
    out.name = policy.meta.ns + "/" + policy.meta.name;
    switch (policy.action) {
      case cfg::AuthorizationAction::kAllow:
        out.action = AuthorizationPolicy::Action::kAllow;
        break;
      case cfg::AuthorizationAction::kDeny:
        out.action = AuthorizationPolicy::Action::kDeny;
        break;
      case cfg::AuthorizationAction::kAudit:
        out.action = AuthorizationPolicy::Action::kAudit;
        break;
      case cfg::AuthorizationAction::kCustom:
        out.action = AuthorizationPolicy::Action::kCustom;
        break;
    }
    auto blocks = [&](const std::vector<std::string>& texts, std::vector<CidrBlock>& into) {
      for (const auto& text : texts) {
        auto block = CidrBlock::parse(text);
        if (!block) {
          out_->problems.push_back(where + ": " + block.message());
          return false;
        }
        into.push_back(*block);
      }
      return true;
    };
    const bool deny = out.action == AuthorizationPolicy::Action::kDeny;
    // serviceAccounts ("ns/sa", or "sa" in the policy's namespace) name principals.
    auto principalsOf = [&](const std::vector<std::string>& accounts) {
      std::vector<std::string> principals;
      for (const std::string& account : accounts) {
        const size_t slash = account.find('/');
        const std::string ns =
            slash == std::string::npos ? policy.meta.ns : account.substr(0, slash);
        const std::string sa = slash == std::string::npos ? account : account.substr(slash + 1);
        principals.push_back(out_->trust_domain + "/ns/" + ns + "/sa/" + sa);
      }
      return principals;
    };
    for (const cfg::AuthorizationRule& rule : policy.rules) {
      AuthorizationRule compiled;
      for (const cfg::PolicySource& from : rule.from) {
        Source source;
        source.principals = {from.principals, from.not_principals};
        source.namespaces = {from.namespaces, from.not_namespaces};
        if (!blocks(from.ip_blocks, source.ip_blocks) ||
            !blocks(from.not_ip_blocks, source.not_ip_blocks))
          return std::nullopt;
        for (std::string& p : principalsOf(from.not_service_accounts))
          source.principals.not_values.push_back(std::move(p));  // excluded either way
        // Fields left out would widen the source to "anyone": a source the waypoint cannot
        // evaluate never matches in an ALLOW policy, and is matched without them in a DENY one
        // (so it denies more, never less).
        std::vector<std::string> unchecked;
        if (!from.service_accounts.empty()) {
          if (from.principals.empty())
            source.principals.values = principalsOf(from.service_accounts);
          else
            unchecked.push_back("serviceAccounts together with principals");
        }
        if (!from.request_principals.empty() || !from.not_request_principals.empty())
          unchecked.push_back("requestPrincipals (no JWT validation)");
        if (!from.remote_ip_blocks.empty() || !from.not_remote_ip_blocks.empty())
          unchecked.push_back("remoteIpBlocks");
        if (!unchecked.empty()) {
          std::string fields;
          for (const auto& f : unchecked) fields += (fields.empty() ? "" : ", ") + f;
          out_->problems.push_back(where + ": the waypoint does not evaluate " + fields +
                                   (deny ? "; the DENY rule applies without them"
                                         : "; that ALLOW source matches no request"));
          if (!deny) continue;
        }
        compiled.from.push_back(std::move(source));
      }
      // Every source was dropped: the rule matches nothing (an empty `from` would mean anyone).
      if (!rule.from.empty() && compiled.from.empty()) continue;
      for (const cfg::PolicyOperation& to : rule.to) {
        Operation operation;
        operation.hosts = {to.hosts, to.not_hosts};
        operation.methods = {to.methods, to.not_methods};
        operation.paths = {to.paths, to.not_paths};
        for (uint16_t p : to.ports) operation.ports.values.push_back(std::to_string(p));
        for (uint16_t p : to.not_ports) operation.ports.not_values.push_back(std::to_string(p));
        compiled.to.push_back(std::move(operation));
      }
      for (const cfg::PolicyCondition& when : rule.when) {
        auto condition = Condition::create(when.key, when.values, when.not_values);
        if (!condition) {
          // An ALLOW rule that cannot be evaluated must not allow; a DENY one must still deny:
          // drop the whole policy for ALLOW and keep it unconditional for DENY (fail closed).
          out_->problems.push_back(where + ": " + condition.message());
          if (out.action != AuthorizationPolicy::Action::kDeny) return std::nullopt;
          continue;
        }
        compiled.when.push_back(std::move(*condition));
      }
      out.rules.push_back(std::move(compiled));
    }
    return out;
  }

  const cfg::Snapshot& snapshot_;
  std::string waypoint_ns_, waypoint_name_;
  uint16_t hbone_port_;
  std::shared_ptr<RouteConfig> out_;
  std::map<std::string, size_t> cluster_index_;
  std::set<std::string> reported_conflicts_;
  // The family of the VIP being compiled: clusters and their endpoints are per family.
  boost::asio::ip::address family_ =
      boost::asio::ip::address_v4();  // hosts with an ignored VirtualService, once each
};

}  // namespace

std::shared_ptr<const RouteConfig> compileRoutes(const config::Snapshot& snapshot,
                                                 std::string_view trust_domain,
                                                 std::string_view waypoint_ns,
                                                 std::string_view waypoint_name,
                                                 uint16_t hbone_port) {
  return Compiler(snapshot, trust_domain, waypoint_ns, waypoint_name, hbone_port).compile();
}

}  // namespace sluice::waypoint
