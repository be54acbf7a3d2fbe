// Routing decisions of the tunnel daemon, as pure functions of the snapshot: where an outbound
// connection goes and whether an inbound tunnel may reach its workload. No sockets here, so
// every rule is unit-tested directly.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/snapshot.h"
#include "core/identity/spiffe_id.h"

namespace sluice::ztunnel {

enum class OutboundKind {
  kHbone,        // destination is a meshed workload: tunnel to its HBONE port
  kPassthrough,  // destination is outside the mesh: connect to it directly
  kNoEndpoint,   // a service with no usable endpoint: refuse
};

struct OutboundRoute {
  OutboundKind kind = OutboundKind::kPassthrough;
  boost::asio::ip::tcp::endpoint target;         // workload ip:port (HBONE :authority) or direct
  boost::asio::ip::tcp::endpoint hbone_address;  // workload ip:hbone port
  identity::SpiffeId peer_identity;              // the identity the peer must prove
  const config::Pod* pod = nullptr;              // destination workload, when known
  const config::Service* service = nullptr;      // when the destination was a service VIP
  std::string reason;                            // why kNoEndpoint
};

struct RoutingContext {
  std::string trust_domain = "cluster.local";
  uint16_t hbone_port = 15008;
};

// `pick` spreads connections over a service's endpoints (a per-connection counter or random).
OutboundRoute routeOutbound(const config::Snapshot& snapshot, const RoutingContext& context,
                            const boost::asio::ip::tcp::endpoint& original_destination,
                            uint64_t pick);

identity::SpiffeId identityOf(const config::Pod& pod, std::string_view trust_domain);

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
