// Snapshot: one consistent, immutable view of the cluster configuration.
//
// Every configuration source (the YAML directory now, the Kubernetes watch later) collects
// decoded objects into an ObjectSet and calls Snapshot::build(); consumers share the result as
// std::shared_ptr<const Snapshot> across threads without locks. Lookups are O(1) (by IP) or
// O(log n) (by name); derived answers (endpoints, policy) are computed once at build time.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config/objects.h"

namespace sluice::config {

// The objects a snapshot is built from. Sources must not put two objects with the same
// (kind, namespace, name) here; the file loader rejects such duplicates before building.
struct ObjectSet {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<Service> services;
  std::vector<PeerAuthentication> peer_authentications;
  std::vector<AuthorizationPolicy> authorization_policies;
  std::vector<VirtualService> virtual_services;
  std::vector<DestinationRule> destination_rules;
  std::vector<Gateway> gateways;
  std::vector<HTTPRoute> http_routes;

  void add(Object object);
  size_t size() const;
};

struct SnapshotOptions {
  // A PeerAuthentication without selector in this namespace applies to the whole mesh.
  std::string root_namespace{kDefaultRootNamespace};
  // Completes short service names ("reviews" in namespace "shop" is
  // reviews.shop.svc.<cluster_domain>), as Istio does for hosts.
  std::string cluster_domain = "cluster.local";
};

// `host` as a fully qualified name: one without a dot (and not "*") is a service name in
// namespace `ns`; anything else is returned unchanged.
std::string qualifyHost(std::string_view host, std::string_view ns,
                        std::string_view cluster_domain);

class Snapshot {
 public:
  // Sorts the objects by (namespace, name), builds the indexes and stamps a process-wide,
  // strictly increasing version.
  static std::shared_ptr<const Snapshot> build(ObjectSet objects, SnapshotOptions options = {});

  // The pod that owns `ip` (IPv4-mapped IPv6 addresses match their IPv4 form). Host-network
  // pods are never returned (their IP is the node's). When several pods claim one IP (a
  // finished pod whose IP was reused), a Running pod wins.
  const Pod* podByIp(const boost::asio::ip::address& ip) const;
  const Pod* pod(std::string_view ns, std::string_view name) const;
  const Namespace* namespaceByName(std::string_view name) const;
  // The service with this cluster IP (IPv4-mapped IPv6 addresses match their IPv4 form).
  const Service* serviceByVip(const boost::asio::ip::address& vip) const;
  const Service* service(std::string_view ns, std::string_view name) const;

  // Running pods with an IP in the service's namespace whose labels include its selector,
  // ordered by name. A service without selector has none. Works for a Service from another
  // snapshot too (then computed on the spot).
  std::vector<const Pod*> endpoints(const Service& service) const;
  std::vector<const Pod*> podsOnNode(std::string_view node) const;

  // True when the pod's namespace exists and is labelled sluice.dev/dataplane-mode=ambient,
  // the pod is not labelled sluice.dev/dataplane-mode=none and does not use the host network.
  bool isMeshed(const Pod& pod) const;
  // The pods of `node` that its agent enrolls and its ztunnel serves: meshed (isMeshed) and with
  // at least one IP (a pod not yet given one cannot be reached or captured).
  std::vector<const Pod*> meshedPodsOnNode(std::string_view node) const;

  // The mTLS mode for connections to `port` of `pod` (the pod's own port, i.e. a service's
  // target port, as in portLevelMtls): a matching workload policy (selector) in the pod's
  // namespace, else the namespace policy, else the mesh-wide policy. Within a policy a
  // port-level mode wins; UNSET at any level defers to the next; UNSET everywhere
  // resolves to PERMISSIVE. Of several candidates the oldest applies, as in Istio
  // (creationTimestamp, then name).
  MtlsMode effectiveMtls(const Pod& pod, uint16_t port) const;

  // The L7 kinds of a namespace, sorted by name (empty when there are none).
  std::span<const VirtualService> virtualServices(std::string_view ns) const;
  std::span<const DestinationRule> destinationRules(std::string_view ns) const;
  std::span<const AuthorizationPolicy> authorizationPolicies(std::string_view ns) const;
  std::span<const HTTPRoute> httpRoutes(std::string_view ns) const;
  const Gateway* gateway(std::string_view ns, std::string_view name) const;
  // The Gateway `name` in `ns` when its class is sluice-waypoint, else null.
  const Gateway* waypoint(std::string_view ns, std::string_view name) const;

  // The DestinationRule of namespace `ns` for `host` (short names are qualified relative to
  // `ns`): one naming the host exactly, else the wildcard ("*.shop.svc.cluster.local", "*")
  // with the longest suffix that covers it. Several rules for one host come back merged as
  // Istio merges them (the oldest's traffic policy, every subset by its first name). Which
  // namespaces to ask, in which order (client, service, root), is the caller's policy.
  const DestinationRule* destinationRule(std::string_view ns, std::string_view host) const;
  // What that merging dropped: a subset whose name an older rule for the same host already
  // defines, one line each naming both rules (for the waypoint's config_dump problems).
  const std::vector<std::string>& destinationRuleConflicts() const {
    return destination_rule_conflicts_;
  }

  // HTTPRoutes with a parentRef naming Gateway `name` in `ns` (a parentRef without namespace
  // names its route's), sorted by (namespace, name). Whether the Gateway's listeners admit
  // them (allowedRoutes) is the waypoint's check.
  std::vector<const HTTPRoute*> httpRoutesForGateway(std::string_view ns,
                                                     std::string_view name) const;

  // All objects, sorted by (namespace, name).
  const std::vector<Namespace>& namespaces() const { return objects_.namespaces; }
  const std::vector<Pod>& pods() const { return objects_.pods; }
  const std::vector<Service>& services() const { return objects_.services; }
  const std::vector<PeerAuthentication>& peerAuthentications() const {
    return objects_.peer_authentications;
  }
  const std::vector<AuthorizationPolicy>& authorizationPolicies() const {
    return objects_.authorization_policies;
  }
  const std::vector<VirtualService>& virtualServices() const { return objects_.virtual_services; }
  const std::vector<DestinationRule>& destinationRules() const {
    return objects_.destination_rules;
  }
  const std::vector<Gateway>& gateways() const { return objects_.gateways; }
  const std::vector<HTTPRoute>& httpRoutes() const { return objects_.http_routes; }
  const SnapshotOptions& options() const { return options_; }

  // Only build() can make one (the tag is private); public for std::make_shared.
  struct BuildTag {
   private:
    friend class Snapshot;
    BuildTag() = default;
  };
  Snapshot(BuildTag, ObjectSet objects, SnapshotOptions options, uint64_t version);

  // The whole snapshot as one JSON document, for the admin /config_dump endpoint.
  std::string toJson() const;
  uint64_t version() const { return version_; }

 private:
  struct PolicyScope {
    const PeerAuthentication* namespace_wide = nullptr;
    std::vector<const PeerAuthentication*> workload;  // with a selector, oldest first
  };

  void index();
  std::vector<const Pod*> computeEndpoints(const Service& service) const;

  ObjectSet objects_;
  SnapshotOptions options_;
  uint64_t version_;
  std::unordered_map<boost::asio::ip::address, const Pod*> pods_by_ip_;
  std::unordered_map<boost::asio::ip::address, const Service*> services_by_vip_;
  std::map<std::string, std::vector<const Pod*>, std::less<>> pods_by_node_;
  std::vector<std::vector<const Pod*>> endpoints_;  // parallel to objects_.services
  std::map<std::string, PolicyScope, std::less<>> policies_by_ns_;
  template <class T>
  using ByNamespace = std::map<std::string, std::map<std::string, T, std::less<>>, std::less<>>;
  // The rules of each (namespace, qualified or wildcard host), merged.
  std::deque<DestinationRule> merged_destination_rules_;
  ByNamespace<DestinationRule*> destination_rules_by_host_;       // into merged_destination_rules_
  ByNamespace<std::vector<const HTTPRoute*>> routes_by_gateway_;  // namespace -> Gateway name
  std::vector<std::string> destination_rule_conflicts_;
};

}  // namespace sluice::config
