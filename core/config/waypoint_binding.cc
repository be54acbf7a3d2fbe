#include "core/config/waypoint_binding.h"

#include <algorithm>

namespace sluice::config {
namespace {

// The first non-empty value among `keys`: our spelling before Istio's.
std::optional<std::string> labelValue(const ObjectMeta& meta,
                                      std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    auto it = meta.labels.find(std::string(key));
    if (it != meta.labels.end() && !it->second.empty()) return it->second;
  }
  return std::nullopt;
}

enum class Binding { kUnset, kNone, kNamed };

// One object's own say: a waypoint, an explicit `none`, or nothing. The namespace override is
// read from the same object as the name, as Istio does.
Binding bindingOf(const ObjectMeta& meta, std::string_view default_ns, WaypointRef& out) {
  auto name = labelValue(meta, {kUseWaypointLabel, kIstioUseWaypointLabel});
  if (!name) return Binding::kUnset;
  if (*name == kUseWaypointNone) return Binding::kNone;
  out.name = *name;
  out.ns = labelValue(meta, {kUseWaypointNamespaceLabel, kIstioUseWaypointNamespaceLabel})
               .value_or(std::string(default_ns));
  return Binding::kNamed;
}

}  // namespace

std::optional<WaypointRef> waypointFor(const Snapshot& snapshot, const Service& service) {
  WaypointRef ref;
  switch (bindingOf(service.meta, service.meta.ns, ref)) {
    case Binding::kNamed:
      return ref;
    case Binding::kNone:
      return std::nullopt;
    case Binding::kUnset:
      break;
  }
  const Namespace* ns = snapshot.namespaceByName(service.meta.ns);
  if (ns != nullptr && bindingOf(ns->meta, service.meta.ns, ref) == Binding::kNamed) return ref;
  return std::nullopt;
}

bool waypointAdmits(const Snapshot& snapshot, const Gateway& waypoint, std::string_view ns) {
  const auto hbone = std::find_if(
      waypoint.listeners.begin(), waypoint.listeners.end(),
      [](const GatewayListener& l) { return l.protocol == "HBONE" && l.port == 15008; });
  const std::string from =
      hbone == waypoint.listeners.end() ? "Same" : hbone->allowed_namespaces_from;
  if (from == "All") return true;
  if (from == "Selector") {
    const Namespace* wanted = snapshot.namespaceByName(ns);
    if (wanted == nullptr || hbone->allowed_namespaces_selector.empty()) return false;
    for (const auto& [key, value] : hbone->allowed_namespaces_selector) {
      auto it = wanted->meta.labels.find(key);
      if (it == wanted->meta.labels.end() || it->second != value) return false;
    }
    return true;
  }
  return waypoint.meta.ns == ns;  // Same, and anything unknown
}

bool isWaypointInstance(const Pod& pod, const WaypointRef& waypoint) {
  if (pod.meta.ns != waypoint.ns) return false;
  auto it = pod.meta.labels.find(std::string(kGatewayNameLabel));
  return it != pod.meta.labels.end() && it->second == waypoint.name;
}

std::vector<const Pod*> waypointInstances(const Snapshot& snapshot, const WaypointRef& waypoint) {
  std::vector<const Pod*> out;
  const auto& pods = snapshot.pods();  // sorted by (namespace, name)
  auto first =
      std::lower_bound(pods.begin(), pods.end(), waypoint.ns,
                       [](const Pod& pod, const std::string& ns) { return pod.meta.ns < ns; });
  for (auto it = first; it != pods.end() && it->meta.ns == waypoint.ns; ++it) {
    if (isWaypointInstance(*it, waypoint) && it->phase == "Running" && !it->ips.empty() &&
        !it->host_network)
      out.push_back(&*it);
  }
  return out;
}

}  // namespace sluice::config
