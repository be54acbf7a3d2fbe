// The typed configuration objects Sluice reads from Kubernetes-shaped documents.
//
// These are plain values: decoders (decoder.h) build them from YAML/JSON, the snapshot
// (snapshot.h) indexes them. Every object carries ObjectMeta; namespaced kinds always have a
// non-empty `ns` ("default" when the document names none), cluster-scoped kinds an empty one.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/config/object_meta.h"
#include "core/config/traffic_objects.h"

namespace sluice::config {

// Labels a namespace or pod carries to opt in to (or out of) the ambient data plane.
inline constexpr std::string_view kDataplaneModeLabel = "sluice.dev/dataplane-mode";
inline constexpr std::string_view kDataplaneModeAmbient = "ambient";
inline constexpr std::string_view kDataplaneModeNone = "none";
// Label on a service or namespace naming the waypoint (a Gateway of class sluice-waypoint in
// the same namespace) its traffic goes through.
inline constexpr std::string_view kUseWaypointLabel = "sluice.dev/use-waypoint";

// Waypoint binding, Istio ambient's labels. Istio's spellings are accepted too (ours win on one
// object), so manifests written for Istio bind unchanged. `none` on a service opts it out of its
// namespace's waypoint. The waypoint's pods carry the Gateway API deployment label.
inline constexpr std::string_view kIstioUseWaypointLabel = "istio.io/use-waypoint";
inline constexpr std::string_view kUseWaypointNamespaceLabel = "sluice.dev/use-waypoint-namespace";
inline constexpr std::string_view kIstioUseWaypointNamespaceLabel =
    "istio.io/use-waypoint-namespace";
inline constexpr std::string_view kUseWaypointNone = "none";
inline constexpr std::string_view kGatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

// Where mesh-wide policy lives unless configured otherwise (Istio's default root namespace).
inline constexpr std::string_view kDefaultRootNamespace = "istio-system";

struct Namespace {
  ObjectMeta meta;
};

// What the lab runs for a container (spec.containers[]): Kubernetes starts the image's
// entrypoint, the lab has no images and runs `command` + `args` instead.
struct Container {
  std::string name;
  std::vector<std::string> command;
  std::vector<std::string> args;
  // env[] entries with a literal value, as "NAME=value" (valueFrom is not read).
  std::vector<std::string> env;
  std::vector<uint16_t> ports;  // ports[].containerPort
};

struct Pod {
  ObjectMeta meta;
  std::string node_name;
  std::string service_account = "default";
  bool host_network = false;
  // status.podIPs in order (status.podIP first when only it is given); no duplicates.
  std::vector<boost::asio::ip::address> ips;
  std::string phase;  // Pending, Running, Succeeded, Failed, Unknown, or empty when not reported
  // Container ports that have a name (spec.containers[].ports[]), to resolve a Service's
  // named targetPort. The first container declaring a name wins, as in Kubernetes.
  std::map<std::string, uint16_t> named_ports;
  std::vector<Container> containers;
};

struct ServicePort {
  std::string name;
  uint16_t port = 0;                                              // 1..65535
  std::variant<uint16_t, std::string> target_port = uint16_t{0};  // number, or a pod port name
  std::string protocol = "TCP";                                   // TCP, UDP or SCTP
  std::string app_protocol;                                       // empty when not set
};

struct Service {
  ObjectMeta meta;
  // spec.clusterIPs (or spec.clusterIP); empty for headless ("None") and unassigned services.
  std::vector<boost::asio::ip::address> cluster_ips;
  std::vector<ServicePort> ports;
  // Empty means "no selector": Kubernetes then manages no endpoints for the service.
  std::map<std::string, std::string> selector;
  bool headless = false;  // clusterIP "None"
};

enum class MtlsMode { kUnset, kDisable, kPermissive, kStrict };

// "UNSET", "DISABLE", "PERMISSIVE" or "STRICT", as written in PeerAuthentication.
std::string_view toString(MtlsMode mode);
std::optional<MtlsMode> parseMtlsMode(std::string_view text);

struct PeerAuthentication {
  ObjectMeta meta;
  // spec.selector.matchLabels; nullopt (no selector or no labels) makes the policy apply to
  // the whole namespace, or to the whole mesh in the root namespace.
  std::optional<std::map<std::string, std::string>> selector;
  MtlsMode mode = MtlsMode::kUnset;
  // spec.portLevelMtls keyed by the workload's (target) port. Only allowed with a selector.
  std::map<uint16_t, MtlsMode> port_modes;
};

// One decoded object of any kind Sluice reads. Adding a kind adds an alternative here.
using Object = std::variant<Namespace, Pod, Service, PeerAuthentication, VirtualService,
                            DestinationRule, AuthorizationPolicy, Gateway, HTTPRoute>;

// The Kubernetes kind name of a decoded object ("Pod", ...).
std::string_view kindOf(const Object& object);
const ObjectMeta& metaOf(const Object& object);

}  // namespace sluice::config
