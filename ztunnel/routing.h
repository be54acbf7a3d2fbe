// Routing decisions of the tunnel daemon, as pure functions of the snapshot: where an outbound
// connection goes and whether an inbound tunnel may reach its workload. No sockets here, so
// every rule is unit-tested directly.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config/snapshot.h"
#include "core/config/waypoint_binding.h"
#include "core/identity/spiffe_id.h"

namespace sluice::ztunnel {

enum class OutboundKind {
  kHbone,        // destination is a meshed workload: tunnel to its HBONE port
  kWaypoint,     // a service bound to a waypoint: tunnel to a waypoint instance, which does L7
  kPassthrough,  // destination is outside the mesh: connect to it directly
  kNoEndpoint,   // a service with no usable endpoint: refuse
  kNoWaypoint,   // a service bound to a waypoint that cannot take it: refuse (never bypass L7)
};

// Both tunnel kinds open an HBONE CONNECT to `hbone_address` with :authority = `target`.
inline bool overHbone(OutboundKind kind) {
  return kind == OutboundKind::kHbone || kind == OutboundKind::kWaypoint;
}

struct OutboundRoute {
  OutboundKind kind = OutboundKind::kPassthrough;
  // The HBONE :authority, or where to connect directly: the chosen workload's ip:port, or for
  // kWaypoint the service VIP:port the client asked for (the waypoint picks the endpoint).
  boost::asio::ip::tcp::endpoint target;
  boost::asio::ip::tcp::endpoint hbone_address;  // workload (or waypoint instance) ip:hbone port
  identity::SpiffeId peer_identity;              // the identity the peer must prove
  const config::Pod* pod = nullptr;  // destination workload (the waypoint instance), when known
  const config::Service* service = nullptr;     // when the destination was a service VIP
  std::optional<config::WaypointRef> waypoint;  // the service's waypoint, when it has one
  std::string reason;                           // why kNoEndpoint / kNoWaypoint
};

struct RoutingContext {
  std::string trust_domain = "cluster.local";
  uint16_t hbone_port = 15008;
};

// `pick` spreads connections over a service's endpoints or its waypoint's instances (a
// per-connection counter or random). `source` is the connecting workload when known: a
// waypoint instance calling a service it serves goes to the endpoint, never to itself again.
// Only service-addressed traffic is sent to a waypoint; a connection to a pod IP goes straight to
// the pod (Istio's workload-addressed waypoints, istio.io/waypoint-for, are not implemented).
OutboundRoute routeOutbound(const config::Snapshot& snapshot, const RoutingContext& context,
                            const boost::asio::ip::tcp::endpoint& original_destination,
                            uint64_t pick, const config::Pod* source = nullptr);

struct InboundDecision {
  int status = 200;  // 200, or the HBONE status to answer: 400 malformed, 401 denied, 503
  std::string reason;
  boost::asio::ip::tcp::endpoint target;
  const config::Pod* pod = nullptr;
};

// A CONNECT may only reach the workload whose listener took it, on a port in 1..65535.
InboundDecision decideInbound(const config::Snapshot& snapshot, const config::Pod& local,
                              std::string_view method, std::string_view authority);

// PeerAuthentication for plaintext arriving at a workload: STRICT refuses it.
bool plaintextAllowed(const config::Snapshot& snapshot, const config::Pod& local, uint16_t port);

}  // namespace sluice::ztunnel
