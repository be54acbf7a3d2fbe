// Which waypoint a Service's traffic goes through, and which pods serve that waypoint: Istio
// ambient's binding, as pure functions of a snapshot.
//
// A Service labelled sluice.dev/use-waypoint=<name> (or istio.io/use-waypoint), or one in a
// Namespace so labelled, is bound to the waypoint <name> in the Service's namespace, or in the
// namespace named by use-waypoint-namespace on the same object. The Service's label wins over
// its Namespace's, and `none` on the Service opts it out. The waypoint's instances are the pods
// its Gateway deployment runs (label gateway.networking.k8s.io/gateway-name=<name>).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/snapshot.h"

namespace sluice::config {

struct WaypointRef {
  std::string ns;
  std::string name;

  std::string str() const { return ns + "/" + name; }
  bool operator==(const WaypointRef&) const = default;
};

// The waypoint bound to `service`, or nullopt when none is (no label, an empty value, or
// `none`). Says nothing about whether the waypoint exists: callers fail closed when it does not.
std::optional<WaypointRef> waypointFor(const Snapshot& snapshot, const Service& service);

// Whether the waypoint's Gateway lets services of namespace `ns` use it: the allowedRoutes of its
// HBONE listener on 15008 (without one, `Same`), as Istio reads them. `Selector` matches the
// namespace's labels against matchLabels; an empty matchLabels admits nothing, since "not given"
// and "{}" look alike here and a waypoint must not be joined by accident.
bool waypointAdmits(const Snapshot& snapshot, const Gateway& waypoint, std::string_view ns);

// True when `pod` is one of the waypoint's pods, ready or not.
bool isWaypointInstance(const Pod& pod, const WaypointRef& waypoint);

// The waypoint's ready instances: pods of its namespace carrying its gateway-name label, Running,
// with an IP and not on the host network; ordered by name. O(pods in that namespace).
std::vector<const Pod*> waypointInstances(const Snapshot& snapshot, const WaypointRef& waypoint);

}  // namespace sluice::config
