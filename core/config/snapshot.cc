#include "core/config/snapshot.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

namespace sluice::config {
namespace {

using boost::asio::ip::address;

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; objects name them as a.b.c.d.
address normalize(const address& ip) {
  if (ip.is_v6() && ip.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
  return ip;
}

template <class T>
void sortByName(std::vector<T>& objects) {
  std::sort(objects.begin(), objects.end(), [](const T& a, const T& b) {
    return std::tie(a.meta.ns, a.meta.name) < std::tie(b.meta.ns, b.meta.name);
  });
}

// Binary search in a vector sorted by (namespace, name).
template <class T>
const T* findByName(const std::vector<T>& objects, std::string_view ns, std::string_view name) {
  auto it = std::lower_bound(
      objects.begin(), objects.end(), std::pair(ns, name),
      [](const T& object, const std::pair<std::string_view, std::string_view>& key) {
        return std::pair<std::string_view, std::string_view>(object.meta.ns, object.meta.name) <
               key;
      });
  if (it == objects.end() || it->meta.ns != ns || it->meta.name != name) return nullptr;
  return &*it;
}

bool hasLabels(const std::map<std::string, std::string>& labels,
               const std::map<std::string, std::string>& wanted) {
  for (const auto& [key, value] : wanted) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

bool hasLabel(const ObjectMeta& meta, std::string_view key, std::string_view value) {
  auto it = meta.labels.find(std::string(key));
  return it != meta.labels.end() && it->second == value;
}

// The objects of one namespace in a vector sorted by (namespace, name).
template <class T>
std::span<const T> inNamespace(const std::vector<T>& objects, std::string_view ns) {
  auto first = std::lower_bound(
      objects.begin(), objects.end(), ns,
      [](const T& object, std::string_view key) { return std::string_view(object.meta.ns) < key; });
  auto last = std::upper_bound(first, objects.end(), ns, [](std::string_view key, const T& object) {
    return key < std::string_view(object.meta.ns);
  });
  return std::span<const T>(first, last);
}

std::atomic<uint64_t> next_version{1};

}  // namespace

void ObjectSet::add(Object object) {
  std::visit(
      [this](auto&& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, Namespace>) {
          namespaces.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, Pod>) {
          pods.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, Service>) {
          services.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, PeerAuthentication>) {
          peer_authentications.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, AuthorizationPolicy>) {
          authorization_policies.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, VirtualService>) {
          virtual_services.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, DestinationRule>) {
          destination_rules.push_back(std::move(value));
        } else if constexpr (std::is_same_v<T, Gateway>) {
          gateways.push_back(std::move(value));
        } else {
          static_assert(std::is_same_v<T, HTTPRoute>, "store the new kind here");
          http_routes.push_back(std::move(value));
        }
      },
      std::move(object));
}

size_t ObjectSet::size() const {
  return namespaces.size() + pods.size() + services.size() + peer_authentications.size() +
         authorization_policies.size() + virtual_services.size() + destination_rules.size() +
         gateways.size() + http_routes.size();
}

std::string qualifyHost(std::string_view host, std::string_view ns,
                        std::string_view cluster_domain) {
  if (host.empty() || host == "*" || host.find('.') != std::string_view::npos)
    return std::string(host);
  std::string out(host);
  out += '.';
  out += ns;
  out += ".svc.";
  out += cluster_domain;
  return out;
}

std::shared_ptr<const Snapshot> Snapshot::build(ObjectSet objects, SnapshotOptions options) {
  sortByName(objects.namespaces);
  sortByName(objects.pods);
  sortByName(objects.services);
  sortByName(objects.peer_authentications);
  sortByName(objects.authorization_policies);
  sortByName(objects.virtual_services);
  sortByName(objects.destination_rules);
  sortByName(objects.gateways);
  sortByName(objects.http_routes);
  return std::make_shared<const Snapshot>(BuildTag{}, std::move(objects), std::move(options),
                                          next_version.fetch_add(1));
}

Snapshot::Snapshot(BuildTag, ObjectSet objects, SnapshotOptions options, uint64_t version)
    : objects_(std::move(objects)), options_(std::move(options)), version_(version) {
  index();
}

void Snapshot::index() {
  for (const Pod& pod : objects_.pods) {
    if (!pod.node_name.empty()) pods_by_node_[pod.node_name].push_back(&pod);
    if (pod.host_network) continue;
    for (const address& ip : pod.ips) {
      auto [it, inserted] = pods_by_ip_.emplace(normalize(ip), &pod);
      // A finished pod keeps reporting an IP that a new pod may already use.
      if (!inserted && it->second->phase != "Running" && pod.phase == "Running") it->second = &pod;
    }
  }
  for (const Service& service : objects_.services) {
    for (const address& ip : service.cluster_ips) services_by_vip_.emplace(normalize(ip), &service);
    endpoints_.push_back(computeEndpoints(service));
  }
  // Where several policies compete, Istio uses the oldest.
  for (const PeerAuthentication& policy : objects_.peer_authentications) {
    PolicyScope& scope = policies_by_ns_[policy.meta.ns];
    if (policy.selector) {
      scope.workload.push_back(&policy);
    } else if (scope.namespace_wide == nullptr ||
               olderThan(policy.meta, scope.namespace_wide->meta)) {
      scope.namespace_wide = &policy;
    }
  }
  for (auto& [ns, scope] : policies_by_ns_)
    std::stable_sort(scope.workload.begin(), scope.workload.end(),
                     [](const auto* a, const auto* b) { return olderThan(a->meta, b->meta); });
  // Rules of one namespace for one host merge as Istio merges them, oldest first: a later rule
  // adds the subsets whose names are new, and its top-level traffic policy (with its port-level
  // settings) when the merged rule has none yet. Teams can then own their subsets in files
  // of their own.
  std::vector<const DestinationRule*> oldest_first;
  for (const DestinationRule& rule : objects_.destination_rules) oldest_first.push_back(&rule);
  std::stable_sort(oldest_first.begin(), oldest_first.end(),
                   [](const auto* a, const auto* b) { return olderThan(a->meta, b->meta); });
  // Which rule each merged subset came from, to name it when a later rule repeats the name.
  std::map<std::pair<const DestinationRule*, std::string_view>, const DestinationRule*> defined_by;
  for (const DestinationRule* rule : oldest_first) {
    auto [it, first] = destination_rules_by_host_[rule->meta.ns].try_emplace(
        qualifyHost(rule->host, rule->meta.ns, options_.cluster_domain), nullptr);
    if (first) {
      it->second = &merged_destination_rules_.emplace_back(*rule);
      for (const DestinationRuleSubset& subset : rule->subsets)
        defined_by.emplace(std::pair{it->second, std::string_view(subset.name)}, rule);
      continue;
    }
    DestinationRule& merged = *it->second;
    for (const DestinationRuleSubset& subset : rule->subsets) {
      auto [owner, added] =
          defined_by.emplace(std::pair{&merged, std::string_view(subset.name)}, rule);
      if (added) {
        merged.subsets.push_back(subset);
        continue;
      }
      destination_rule_conflicts_.push_back(
          "DestinationRule " + rule->meta.ns + "/" + rule->meta.name + ": subset \"" + subset.name +
          "\" of " + it->first + " is already defined by the older " + owner->second->meta.ns +
          "/" + owner->second->meta.name + ", whose definition applies");
    }
    if (!merged.traffic_policy && merged.port_level_settings.empty() &&
        (rule->traffic_policy || !rule->port_level_settings.empty())) {
      merged.traffic_policy = rule->traffic_policy;
      merged.port_level_settings = rule->port_level_settings;
    }
  }
  for (const HTTPRoute& route : objects_.http_routes) {
    for (const ObjectReference& parent : route.parent_refs) {
      if (parent.group != kGatewayApiGroup || parent.kind != "Gateway") continue;
      auto& routes = routes_by_gateway_[parent.ns.empty() ? route.meta.ns : parent.ns][parent.name];
      // Two parentRefs to one Gateway (two of its listeners) still list the route once.
      if (routes.empty() || routes.back() != &route) routes.push_back(&route);
    }
  }
}

std::vector<const Pod*> Snapshot::computeEndpoints(const Service& service) const {
  std::vector<const Pod*> out;
  if (service.selector.empty()) return out;
  const std::vector<Pod>& pods = objects_.pods;
  auto first =
      std::lower_bound(pods.begin(), pods.end(), service.meta.ns,
                       [](const Pod& pod, const std::string& ns) { return pod.meta.ns < ns; });
  for (auto it = first; it != pods.end() && it->meta.ns == service.meta.ns; ++it) {
    if (it->phase == "Running" && !it->ips.empty() && hasLabels(it->meta.labels, service.selector))
      out.push_back(&*it);
  }
  return out;
}

const Pod* Snapshot::podByIp(const address& ip) const {
  auto it = pods_by_ip_.find(normalize(ip));
  return it == pods_by_ip_.end() ? nullptr : it->second;
}

const Pod* Snapshot::pod(std::string_view ns, std::string_view name) const {
  return findByName(objects_.pods, ns, name);
}

const Namespace* Snapshot::namespaceByName(std::string_view name) const {
  return findByName(objects_.namespaces, "", name);
}

const Service* Snapshot::serviceByVip(const address& vip) const {
  auto it = services_by_vip_.find(normalize(vip));
  return it == services_by_vip_.end() ? nullptr : it->second;
}

const Service* Snapshot::service(std::string_view ns, std::string_view name) const {
  return findByName(objects_.services, ns, name);
}

std::vector<const Pod*> Snapshot::endpoints(const Service& service) const {
  const std::vector<Service>& services = objects_.services;
  // std::less gives a total order even for pointers into different arrays.
  std::less<const Service*> before;
  if (!services.empty() && !before(&service, services.data()) &&
      before(&service, services.data() + services.size()))
    return endpoints_[static_cast<size_t>(&service - services.data())];
  return computeEndpoints(service);
}

std::vector<const Pod*> Snapshot::podsOnNode(std::string_view node) const {
  auto it = pods_by_node_.find(node);
  return it == pods_by_node_.end() ? std::vector<const Pod*>{} : it->second;
}

bool Snapshot::isMeshed(const Pod& pod) const {
  if (pod.host_network || hasLabel(pod.meta, kDataplaneModeLabel, kDataplaneModeNone)) return false;
  const Namespace* ns = namespaceByName(pod.meta.ns);
  return ns != nullptr && hasLabel(ns->meta, kDataplaneModeLabel, kDataplaneModeAmbient);
}

std::vector<const Pod*> Snapshot::meshedPodsOnNode(std::string_view node) const {
  std::vector<const Pod*> meshed;
  for (const Pod* pod : podsOnNode(node))
    if (isMeshed(*pod) && !pod->ips.empty()) meshed.push_back(pod);
  return meshed;
}

MtlsMode Snapshot::effectiveMtls(const Pod& pod, uint16_t port) const {
  if (auto scope = policies_by_ns_.find(pod.meta.ns); scope != policies_by_ns_.end()) {
    // Only the oldest matching workload policy applies, as in Istio.
    for (const PeerAuthentication* policy : scope->second.workload) {
      if (!hasLabels(pod.meta.labels, *policy->selector)) continue;
      if (auto it = policy->port_modes.find(port);
          it != policy->port_modes.end() && it->second != MtlsMode::kUnset)
        return it->second;
      if (policy->mode != MtlsMode::kUnset) return policy->mode;
      break;
    }
    const PeerAuthentication* ns_policy = scope->second.namespace_wide;
    if (ns_policy != nullptr && ns_policy->mode != MtlsMode::kUnset) return ns_policy->mode;
  }
  if (auto root = policies_by_ns_.find(options_.root_namespace); root != policies_by_ns_.end()) {
    const PeerAuthentication* mesh_policy = root->second.namespace_wide;
    if (mesh_policy != nullptr && mesh_policy->mode != MtlsMode::kUnset) return mesh_policy->mode;
  }
  return MtlsMode::kPermissive;
}

}  // namespace sluice::config

namespace sluice::config {

std::span<const VirtualService> Snapshot::virtualServices(std::string_view ns) const {
  return inNamespace(objects_.virtual_services, ns);
}

std::span<const DestinationRule> Snapshot::destinationRules(std::string_view ns) const {
  return inNamespace(objects_.destination_rules, ns);
}

std::span<const AuthorizationPolicy> Snapshot::authorizationPolicies(std::string_view ns) const {
  return inNamespace(objects_.authorization_policies, ns);
}

std::span<const HTTPRoute> Snapshot::httpRoutes(std::string_view ns) const {
  return inNamespace(objects_.http_routes, ns);
}

const Gateway* Snapshot::gateway(std::string_view ns, std::string_view name) const {
  return findByName(objects_.gateways, ns, name);
}

const Gateway* Snapshot::waypoint(std::string_view ns, std::string_view name) const {
  const Gateway* found = gateway(ns, name);
  return found != nullptr && found->gateway_class_name == kWaypointGatewayClass ? found : nullptr;
}

const DestinationRule* Snapshot::destinationRule(std::string_view ns, std::string_view host) const {
  auto rules = destination_rules_by_host_.find(ns);
  if (rules == destination_rules_by_host_.end()) return nullptr;
  std::string qualified = qualifyHost(host, ns, options_.cluster_domain);
  if (auto exact = rules->second.find(qualified); exact != rules->second.end())
    return exact->second;
  const DestinationRule* best = nullptr;
  size_t best_length = 0;
  for (const auto& [rule_host, rule] : rules->second) {
    if (!rule_host.starts_with('*')) continue;
    std::string_view suffix = std::string_view(rule_host).substr(1);  // ".shop.svc..." or ""
    if (!std::string_view(qualified).ends_with(suffix)) continue;
    if (best == nullptr || suffix.size() > best_length) {
      best = rule;
      best_length = suffix.size();
    }
  }
  return best;
}

std::vector<const HTTPRoute*> Snapshot::httpRoutesForGateway(std::string_view ns,
                                                             std::string_view name) const {
  if (auto gateways = routes_by_gateway_.find(ns); gateways != routes_by_gateway_.end()) {
    if (auto routes = gateways->second.find(name); routes != gateways->second.end())
      return routes->second;
  }
  return {};
}

}  // namespace sluice::config
