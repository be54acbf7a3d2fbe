#include "ztunnel/routing.h"

#include <algorithm>

#include "core/config/service_rules.h"
#include "core/net/authority.h"

namespace sluice::ztunnel {

namespace ip = boost::asio::ip;

namespace {

// The peer identity a tunnel to `pod` must present; empty (never matched) when the pod's names
// make no valid SPIFFE ID.
identity::SpiffeId peerIdentity(const config::Pod& pod, std::string_view trust_domain) {
  auto id = config::workloadIdentity(pod, trust_domain);
  return id ? *id : identity::SpiffeId{};
}

void toWorkload(OutboundRoute& route, const config::Snapshot& snapshot,
                const RoutingContext& context, const config::Pod& pod, ip::tcp::endpoint target) {
  route.pod = &pod;
  route.target = target;
  if (!snapshot.isMeshed(pod)) {
    route.kind = OutboundKind::kPassthrough;
    return;
  }
  route.kind = OutboundKind::kHbone;
  route.hbone_address = ip::tcp::endpoint(target.address(), context.hbone_port);
  route.peer_identity = peerIdentity(pod, context.trust_domain);
}

std::string describe(const config::Service& service) {
  return "service " + service.meta.ns + "/" + service.meta.name;
}

// Sends a connection for a waypoint-bound service to one of the waypoint's instances, with the
// VIP:port as :authority. Fails closed: without a usable instance the connection is refused,
// never sent around the waypoint's L7 policy (Istio's ztunnel refuses too, "unknown waypoint").
void toWaypoint(OutboundRoute& route, const config::Snapshot& snapshot,
                const RoutingContext& context, const config::WaypointRef& waypoint,
                const ip::tcp::endpoint& vip, uint64_t pick) {
  route.target = vip;
  const config::Service& service = *route.service;
  if (const auto* gateway = snapshot.gateway(waypoint.ns, waypoint.name);
      gateway != nullptr && gateway->gateway_class_name != config::kWaypointGatewayClass) {
    route.kind = OutboundKind::kNoWaypoint;
    route.reason = describe(service) + " uses waypoint " + waypoint.str() + ", but that Gateway" +
                   " has class '" + gateway->gateway_class_name + "', not '" +
                   std::string(config::kWaypointGatewayClass) + "' (check its use-waypoint label)";
    return;
  }
  if (const auto* gateway = snapshot.waypoint(waypoint.ns, waypoint.name);
      gateway != nullptr && !config::waypointAdmits(snapshot, *gateway, service.meta.ns)) {
    route.kind = OutboundKind::kNoWaypoint;
    route.reason = describe(service) + " uses waypoint " + waypoint.str() +
                   ", whose Gateway does not admit namespace " + service.meta.ns +
                   " (check allowedRoutes.namespaces of its HBONE listener on 15008)";
    return;
  }
  const auto instances = config::waypointInstances(snapshot, waypoint);
  if (instances.empty()) {
    route.kind = OutboundKind::kNoWaypoint;
    route.reason = describe(service) + " uses waypoint " + waypoint.str() +
                   ", which has no ready instance (a Running pod with an IP labelled " +
                   std::string(config::kGatewayNameLabel) + "=" + waypoint.name + " in namespace " +
                   waypoint.ns + "); refused rather than bypassing its policy";
    return;
  }
  const config::Pod& instance = *instances[pick % instances.size()];
  // The VIP's family when the waypoint has it; the tunnel may cross families, the authority not.
  const auto address = config::endpointAddress(instance, vip.address()).value_or(instance.ips[0]);
  route.kind = OutboundKind::kWaypoint;
  route.pod = &instance;
  route.hbone_address = ip::tcp::endpoint(address, context.hbone_port);
  route.peer_identity = peerIdentity(instance, context.trust_domain);
}

}  // namespace

OutboundRoute routeOutbound(const config::Snapshot& snapshot, const RoutingContext& context,
                            const ip::tcp::endpoint& original_destination, uint64_t pick,
                            const config::Pod* source) {
  OutboundRoute route;
  route.target = original_destination;
  if (const auto* service = snapshot.serviceByVip(original_destination.address())) {
    route.service = service;
    const auto it = std::find_if(service->ports.begin(), service->ports.end(), [&](const auto& p) {
      return p.port == original_destination.port() && p.protocol == "TCP";
    });
    if (it == service->ports.end()) {
      route.kind = OutboundKind::kNoEndpoint;
      route.reason =
          describe(*service) + " has no TCP port " + std::to_string(original_destination.port());
      return route;
    }
    route.waypoint = config::waypointFor(snapshot, *service);
    // The waypoint's own calls to the service it fronts go to the endpoints, or they would loop.
    if (route.waypoint && !(source && config::isWaypointInstance(*source, *route.waypoint))) {
      toWaypoint(route, snapshot, context, *route.waypoint, original_destination, pick);
      return route;
    }
    struct Candidate {
      const config::Pod* pod;
      ip::tcp::endpoint endpoint;
    };
    std::vector<Candidate> candidates;
    for (const auto* pod : snapshot.endpoints(*service)) {
      auto address = config::endpointAddress(*pod, original_destination.address());
      auto port = config::resolveTargetPort(*it, *pod);
      if (address && port) candidates.push_back({pod, ip::tcp::endpoint(*address, *port)});
    }
    if (candidates.empty()) {
      route.kind = OutboundKind::kNoEndpoint;
      route.reason =
          describe(*service) + " has no ready endpoint for port " + std::to_string(it->port);
      return route;
    }
    const auto& chosen = candidates[pick % candidates.size()];
    toWorkload(route, snapshot, context, *chosen.pod, chosen.endpoint);
    return route;
  }
  if (const auto* pod = snapshot.podByIp(original_destination.address()))
    toWorkload(route, snapshot, context, *pod, original_destination);
  return route;
}

InboundDecision decideInbound(const config::Snapshot& snapshot, const config::Pod& local,
                              std::string_view method, std::string_view authority) {
  InboundDecision decision;
  if (method != "CONNECT") {
    decision.status = 400;
    decision.reason = "HBONE expects CONNECT, got " + std::string(method);
    return decision;
  }
  auto target = net::parseAuthority(authority);
  if (!target) {
    decision.status = 400;
    decision.reason = "bad :authority '" + std::string(authority) + "': " + target.message();
    return decision;
  }
  const bool local_address =
      std::find(local.ips.begin(), local.ips.end(), target->address()) != local.ips.end();
  if (!local_address) {
    decision.status = 400;
    decision.reason = "authority " + std::string(authority) + " is not workload " + local.meta.ns +
                      "/" + local.meta.name + " served by this listener";
    return decision;
  }
  decision.pod = snapshot.podByIp(target->address());
  if (decision.pod == nullptr) decision.pod = &local;
  decision.target = *target;
  return decision;
}

bool plaintextAllowed(const config::Snapshot& snapshot, const config::Pod& local, uint16_t port) {
  return snapshot.effectiveMtls(local, port) != config::MtlsMode::kStrict;
}

}  // namespace sluice::ztunnel
