// The metadata an HBONE CONNECT request carries besides its :authority, as Istio's ztunnel sends
// it: `forwarded` (the client's address), `baggage` (the client workload, for the peer's
// telemetry) and `traceparent` (W3C trace context). ztunnel and the waypoint build and read them
// here only, so both send the same values and trust the same inputs.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace sluice::hbone {

// `for="<ip>"` (RFC 7239), the value of the forwarded header for a client at `ip`.
std::string formatForwardedFor(std::string_view ip);
// The client address of a forwarded header; nullopt when the header does not start with for=
// or does not name an address (a peer's garbage never becomes a source address).
std::optional<boost::asio::ip::address> parseForwardedFor(std::string_view value);

// The W3C baggage members Istio's ztunnel sends for the client workload.
struct Baggage {
  std::string ns;               // k8s.namespace.name
  std::string pod;              // k8s.pod.name
  std::string service_name;     // service.name: the canonical service
  std::string service_version;  // service.version: the canonical revision
  bool operator==(const Baggage&) const = default;
};
std::string formatBaggage(const Baggage& baggage);
// Reads the members above from a baggage header, ignoring others and any member properties.
Baggage parseBaggage(std::string_view value);

// A new W3C trace context: version 00, a random 16-byte trace id and 8-byte parent id. Not
// sampled: Sluice records no spans, and the sampled flag tells the next hop that the caller may
// have (a parent-based sampler would then record every request). One rule for both daemons.
std::string newTraceparent(std::mt19937_64& random);
// Whether `value` is a well-formed version-00 traceparent (lower-case hex, ids not all zero);
// a malformed one is replaced, not propagated, as the W3C specification asks.
bool isValidTraceparent(std::string_view value);

}  // namespace sluice::hbone
