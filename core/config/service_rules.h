// Kubernetes' service and workload rules as both node daemons apply them: a service's host name,
// where a service port sends to on a pod, which address of a pod a destination reaches, and a
// pod's workload identity. One place, so ztunnel and the waypoint resolve a Service alike.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config/objects.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::config {

inline constexpr std::string_view kClusterDomain = "cluster.local";

// "reviews" in namespace "shop" -> "reviews.shop.svc.cluster.local"; "reviews.shop" and
// "reviews.shop.svc" are completed the same way; any other host is kept as written.
std::string serviceFqdn(std::string_view host, std::string_view ns);
std::string serviceFqdn(const Service& service);

// The pod port a service port sends to: targetPort as a number (0, i.e. unset, means the
// service port itself, as Kubernetes defaults it), or the pod's container port of that name;
// nullopt when the pod declares no port of that name (the pod is then no endpoint of the port).
std::optional<uint16_t> resolveTargetPort(const ServicePort& port, const Pod& pod);

// The pod's address of the destination's family. A Service VIP of one family has endpoints of
// that family only (Kubernetes keeps one EndpointSlice per family): nullopt when the pod has
// none, and the pod is then no endpoint of that VIP.
std::optional<boost::asio::ip::address> endpointAddress(
    const Pod& pod, const boost::asio::ip::address& destination);

// spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
Result<identity::SpiffeId> workloadIdentity(const Pod& pod, std::string_view trust_domain);

}  // namespace sluice::config
