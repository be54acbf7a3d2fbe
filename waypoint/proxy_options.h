// What a worker's proxy is given: its options (identity, TLS, dial limits, replay buffer), and
// for each downstream connection, who is on the other end. A header of its own so the proxy's
// parts (the upstream pool, the router) read them without depending on the proxy itself.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/identity/spiffe_id.h"
#include "core/net/sockets.h"

namespace sluice::waypoint {

struct ProxyOptions {
  identity::SpiffeId identity;  // the waypoint's own: it authenticates as this upstream
  std::string name, ns;         // the waypoint (Gateway) name and namespace, for telemetry
  std::function<std::shared_ptr<boost::asio::ssl::context>()> client_tls;
  std::chrono::milliseconds connect_timeout{10000};
  // Request bodies up to this size are kept so a retry can send them again; a larger body is
  // streamed to the first endpoint and never retried (Envoy's per-request buffer limit).
  size_t replay_limit = 1024 * 1024;
  net::SocketOptions sockets;  // for upstream dials (mark, so capture never takes them)
};

// Who sent the request, as the HBONE tunnel proved it.
struct Downstream {
  boost::asio::ip::tcp::endpoint vip;  // the CONNECT :authority
  identity::SpiffeId peer;             // the client ztunnel's workload identity
  std::string source_ip;               // from the forwarded header, else the peer's address
  // Tunnels from ztunnels are only for services bound to this waypoint; the plain listeners
  // an operator configures (and tests) name their service themselves.
  bool require_binding = false;
};

}  // namespace sluice::waypoint
