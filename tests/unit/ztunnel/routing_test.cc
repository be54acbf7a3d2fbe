// Routing decisions as pure functions of a snapshot.
#include "ztunnel/routing.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/config/loader.h"

namespace sluice::ztunnel {
namespace {

namespace ip = boost::asio::ip;

std::shared_ptr<const config::Snapshot> load(const std::string& yaml) {
  auto result = config::loadString(yaml, "test.yaml");
  for (const auto& doc : result.documents)
    EXPECT_NE(doc.status, config::DocumentReport::Status::kRejected) << doc.reason;
  return result.snapshot;
}

// The base mesh; `shop_labels` are namespace shop's (a flow mapping).
std::string baseMesh(const std::string& shop_labels) {
  return R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: )" +
         shop_labels + R"(}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-1, namespace: shop, labels: {app: cart}}
spec: {nodeName: n1, serviceAccountName: cart}
status: {phase: Running, podIPs: [{ip: 198.18.1.10}, {ip: "fd00:5::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-2, namespace: shop, labels: {app: cart}}
spec: {nodeName: n2, serviceAccountName: cart}
status: {phase: Running, podIP: 198.18.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: optout, namespace: shop, labels: {sluice.dev/dataplane-mode: none}}
spec: {nodeName: n1}
status: {phase: Running, podIP: 198.18.1.12}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: legacy}
spec: {nodeName: n1}
status: {phase: Running, podIP: 198.18.2.10}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  clusterIPs: [198.19.0.5, "fd00:5::100"]
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  clusterIP: 198.19.0.6
  selector: {app: nothing}
  ports: [{port: 80}]
)";
}

const std::string kMesh = baseMesh("{sluice.dev/dataplane-mode: ambient}");

ip::tcp::endpoint ep(const char* address, uint16_t port) {
  return {ip::make_address(address), port};
}

TEST(OutboundRouting, MeshedPodGoesOverHboneWithItsIdentity) {
  auto snap = load(kMesh);
  auto route = routeOutbound(*snap, {}, ep("198.18.1.11", 9000), 0);
  EXPECT_EQ(route.kind, OutboundKind::kHbone);
  EXPECT_EQ(route.target, ep("198.18.1.11", 9000));
  EXPECT_EQ(route.hbone_address, ep("198.18.1.11", 15008));
  EXPECT_EQ(route.peer_identity.str(), "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST(OutboundRouting, ServiceVipPicksEndpointsInTurnAndMapsTheTargetPort) {
  auto snap = load(kMesh);
  std::set<std::string> seen;
  for (uint64_t pick = 0; pick < 4; ++pick) {
    auto route = routeOutbound(*snap, {}, ep("198.19.0.5", 80), pick);
    ASSERT_EQ(route.kind, OutboundKind::kHbone);
    EXPECT_EQ(route.target.port(), 8080);
    ASSERT_NE(route.service, nullptr);
    seen.insert(route.target.address().to_string());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"198.18.1.10", "198.18.1.11"}));
}

TEST(OutboundRouting, Ipv6VipReachesIpv6Endpoints) {
  auto snap = load(kMesh);
  auto route = routeOutbound(*snap, {}, ep("fd00:5::100", 80), 0);
  ASSERT_EQ(route.kind, OutboundKind::kHbone);
  EXPECT_EQ(route.target, ep("fd00:5::10", 8080));
}

TEST(OutboundRouting, OptOutAndUnmeshedAndUnknownPassThrough) {
  auto snap = load(kMesh);
  for (const char* address : {"198.18.1.12", "198.18.2.10", "198.18.9.9"}) {
    auto route = routeOutbound(*snap, {}, ep(address, 80), 0);
    EXPECT_EQ(route.kind, OutboundKind::kPassthrough) << address;
    EXPECT_EQ(route.target, ep(address, 80));
  }
}

TEST(OutboundRouting, ServiceWithoutEndpointsOrPortIsRefusedWithAReason) {
  auto snap = load(kMesh);
  auto empty = routeOutbound(*snap, {}, ep("198.19.0.6", 80), 0);
  EXPECT_EQ(empty.kind, OutboundKind::kNoEndpoint);
  EXPECT_NE(empty.reason.find("no ready endpoint"), std::string::npos);
  auto wrong_port = routeOutbound(*snap, {}, ep("198.19.0.5", 81), 0);
  EXPECT_EQ(wrong_port.kind, OutboundKind::kNoEndpoint);
  EXPECT_NE(wrong_port.reason.find("no TCP port 81"), std::string::npos);
}

// The base mesh with namespace shop bound to its waypoint (Istio's label), and services bound to
// waypoints in every other way the labels allow.
const std::string kWaypointMesh =
    baseMesh("{sluice.dev/dataplane-mode: ambient, istio.io/use-waypoint: shop-wp}") + R"(
---
apiVersion: v1
kind: Namespace
metadata: {name: plain, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: infra}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: plain}
spec: {nodeName: n1, serviceAccountName: client}
status: {phase: Running, podIP: 198.18.3.10}
---
apiVersion: v1
kind: Pod
metadata:
  name: shop-wp-7c9d-a1
  namespace: shop
  labels: {gateway.networking.k8s.io/gateway-name: shop-wp, sluice.dev/dataplane-mode: none}
spec: {nodeName: n2, serviceAccountName: shop-wp}
status: {phase: Running, podIPs: [{ip: 198.18.1.50}, {ip: "fd00:5::50"}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: shop-wp-7c9d-b2
  namespace: shop
  labels: {gateway.networking.k8s.io/gateway-name: shop-wp, sluice.dev/dataplane-mode: none}
spec: {nodeName: n2, serviceAccountName: shop-wp}
status: {phase: Running, podIP: 198.18.1.51}
---
apiVersion: v1
kind: Pod
metadata:
  name: shop-wp-7c9d-c3
  namespace: shop
  labels: {gateway.networking.k8s.io/gateway-name: shop-wp}
spec: {nodeName: n2, serviceAccountName: shop-wp}
status: {phase: Pending, podIP: 198.18.1.52}
---
apiVersion: v1
kind: Pod
metadata:
  name: shared-wp-1
  namespace: infra
  labels: {gateway.networking.k8s.io/gateway-name: shared}
spec: {nodeName: n2, serviceAccountName: shared-waypoint}
status: {phase: Running, podIP: 198.18.4.50}
---
apiVersion: v1
kind: Pod
metadata:
  name: dead-wp-1
  namespace: shop
  labels: {gateway.networking.k8s.io/gateway-name: dead-wp}
spec: {nodeName: n2, serviceAccountName: dead-wp}
status: {phase: Failed, podIP: 198.18.1.60}
---
apiVersion: v1
kind: Service
metadata: {name: direct, namespace: shop, labels: {sluice.dev/use-waypoint: none}}
spec:
  clusterIP: 198.19.0.7
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: shared
  namespace: shop
  labels: {sluice.dev/use-waypoint: shared, sluice.dev/use-waypoint-namespace: infra}
spec:
  clusterIP: 198.19.0.8
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: orphan, namespace: shop, labels: {sluice.dev/use-waypoint: dead-wp}}
spec:
  clusterIP: 198.19.0.9
  selector: {app: cart}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: plain, labels: {istio.io/use-waypoint: plain-wp}}
spec:
  clusterIP: 198.19.1.5
  ports: [{port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: unbound, namespace: plain}
spec:
  clusterIP: 198.19.1.6
  selector: {app: cart}
  ports: [{port: 80}]
)";

TEST(WaypointBinding, ServiceLabelThenNamespaceLabelThenNone) {
  auto snap = load(kWaypointMesh);
  auto of = [&](const char* ns, const char* name) {
    return config::waypointFor(*snap, *snap->service(ns, name));
  };
  // Istio's label on the namespace binds every service in it.
  EXPECT_EQ(of("shop", "cart"), (config::WaypointRef{"shop", "shop-wp"}));
  // `none` on the service opts out of the namespace's waypoint.
  EXPECT_EQ(of("shop", "direct"), std::nullopt);
  // The service's own label wins, and may name a waypoint in another namespace.
  EXPECT_EQ(of("shop", "shared"), (config::WaypointRef{"infra", "shared"}));
  EXPECT_EQ(of("plain", "api"), (config::WaypointRef{"plain", "plain-wp"}));
  EXPECT_EQ(of("plain", "unbound"), std::nullopt);
}

TEST(WaypointBinding, OurLabelWinsOverIstiosOnOneObject) {
  config::Service service;
  service.meta.ns = "shop";
  service.meta.labels = {{"istio.io/use-waypoint", "theirs"},
                         {"sluice.dev/use-waypoint", "ours"},
                         {"istio.io/use-waypoint-namespace", "elsewhere"}};
  auto snap = load(kWaypointMesh);
  EXPECT_EQ(config::waypointFor(*snap, service), (config::WaypointRef{"elsewhere", "ours"}));
}

TEST(WaypointBinding, InstancesAreTheRunningPodsOfItsGateway) {
  auto snap = load(kWaypointMesh);
  std::vector<std::string> names;
  for (const auto* pod : config::waypointInstances(*snap, {"shop", "shop-wp"}))
    names.push_back(pod->meta.name);
  // The Pending instance is not ready; the other namespace's pods are not this waypoint's.
  EXPECT_EQ(names, (std::vector<std::string>{"shop-wp-7c9d-a1", "shop-wp-7c9d-b2"}));
  EXPECT_TRUE(config::waypointInstances(*snap, {"shop", "shared"}).empty());
}

TEST(OutboundRouting, ServiceWithAWaypointTunnelsToItWithTheVipAsAuthority) {
  auto snap = load(kWaypointMesh);
  const auto* client = snap->pod("plain", "client");
  std::set<std::string> instances;
  for (uint64_t pick = 0; pick < 4; ++pick) {
    auto route = routeOutbound(*snap, {}, ep("198.19.0.5", 80), pick, client);
    ASSERT_EQ(route.kind, OutboundKind::kWaypoint) << route.reason;
    EXPECT_TRUE(overHbone(route.kind));
    // The waypoint, not ztunnel, picks the endpoint: the authority is what the client dialled.
    EXPECT_EQ(route.target, ep("198.19.0.5", 80));
    EXPECT_EQ(route.hbone_address.port(), 15008);
    EXPECT_EQ(route.peer_identity.str(), "spiffe://cluster.local/ns/shop/sa/shop-wp");
    ASSERT_NE(route.service, nullptr);
    EXPECT_EQ(route.service->meta.name, "cart");
    ASSERT_NE(route.pod, nullptr);
    EXPECT_EQ(route.hbone_address.address(), route.pod->ips.front());
    instances.insert(route.pod->meta.name);
  }
  EXPECT_EQ(instances, (std::set<std::string>{"shop-wp-7c9d-a1", "shop-wp-7c9d-b2"}));
}

TEST(OutboundRouting, NamespaceWaypointCoversServicesWithoutTheirOwnLabelOnly) {
  auto snap = load(kWaypointMesh);
  // `none` on the service: straight to the endpoint, as without any waypoint.
  auto direct = routeOutbound(*snap, {}, ep("198.19.0.7", 80), 0);
  EXPECT_EQ(direct.kind, OutboundKind::kHbone);
  EXPECT_EQ(direct.target, ep("198.18.1.10", 8080));
  EXPECT_FALSE(direct.waypoint);
}

TEST(OutboundRouting, WaypointInAnotherNamespaceProvesItsOwnIdentity) {
  auto snap = load(kWaypointMesh);
  auto route = routeOutbound(*snap, {}, ep("198.19.0.8", 80), 0);
  ASSERT_EQ(route.kind, OutboundKind::kWaypoint) << route.reason;
  EXPECT_EQ(route.hbone_address, ep("198.18.4.50", 15008));
  EXPECT_EQ(route.peer_identity.str(), "spiffe://cluster.local/ns/infra/sa/shared-waypoint");
  EXPECT_EQ(route.target, ep("198.19.0.8", 80));
}

TEST(OutboundRouting, WaypointWithoutAReadyInstanceRefusesRatherThanBypassingIt) {
  auto snap = load(kWaypointMesh);
  // The only instance has failed; the service's endpoints are fine, but L7 policy would be lost.
  auto orphan = routeOutbound(*snap, {}, ep("198.19.0.9", 80), 0);
  EXPECT_EQ(orphan.kind, OutboundKind::kNoWaypoint);
  EXPECT_EQ(orphan.pod, nullptr);
  EXPECT_NE(orphan.reason.find("service shop/orphan uses waypoint shop/dead-wp"), std::string::npos)
      << orphan.reason;
  EXPECT_NE(orphan.reason.find("no ready instance"), std::string::npos) << orphan.reason;
  EXPECT_NE(orphan.reason.find("gateway.networking.k8s.io/gateway-name=dead-wp"), std::string::npos)
      << orphan.reason;
  // A waypoint that never existed is refused the same way.
  auto api = routeOutbound(*snap, {}, ep("198.19.1.5", 443), 0);
  EXPECT_EQ(api.kind, OutboundKind::kNoWaypoint);
  EXPECT_NE(api.reason.find("plain/plain-wp"), std::string::npos) << api.reason;
}

// kWaypointMesh plus a waypoint's Gateway object: its class and its HBONE listener's
// allowedRoutes (YAML flow mapping, empty for none).
std::shared_ptr<const config::Snapshot> withGateway(const std::string& ns, const std::string& name,
                                                    const std::string& gateway_class,
                                                    const std::string& allowed_routes = "") {
  return load(kWaypointMesh + R"(
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: )" +
              name + ", namespace: " + ns + R"(}
spec:
  gatewayClassName: )" +
              gateway_class + R"(
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
)" + (allowed_routes.empty() ? "" : "    allowedRoutes: " + allowed_routes + "\n"));
}

std::shared_ptr<const config::Snapshot> withShopGateway(const std::string& gateway_class) {
  return withGateway("shop", "shop-wp", gateway_class);
}

TEST(OutboundRouting, WaypointInAnotherNamespaceMustAdmitTheServicesNamespace) {
  // Without allowedRoutes a Gateway admits only its own namespace: shop may not use infra's.
  auto same = routeOutbound(*withGateway("infra", "shared", "sluice-waypoint"), {},
                            ep("198.19.0.8", 80), 0);
  EXPECT_EQ(same.kind, OutboundKind::kNoWaypoint);
  EXPECT_NE(same.reason.find("does not admit namespace shop"), std::string::npos) << same.reason;
  auto all = withGateway("infra", "shared", "sluice-waypoint", "{namespaces: {from: All}}");
  EXPECT_EQ(routeOutbound(*all, {}, ep("198.19.0.8", 80), 0).kind, OutboundKind::kWaypoint);
  auto ambient = withGateway("infra", "shared", "sluice-waypoint",
                             "{namespaces: {from: Selector, selector: {matchLabels: "
                             "{sluice.dev/dataplane-mode: ambient}}}}");
  EXPECT_EQ(routeOutbound(*ambient, {}, ep("198.19.0.8", 80), 0).kind, OutboundKind::kWaypoint);
  auto other =
      withGateway("infra", "shared", "sluice-waypoint",
                  "{namespaces: {from: Selector, selector: {matchLabels: {team: payments}}}}");
  EXPECT_EQ(routeOutbound(*other, {}, ep("198.19.0.8", 80), 0).kind, OutboundKind::kNoWaypoint);
}

TEST(OutboundRouting, UseWaypointNamingAGatewayOfAnotherClassIsRefused) {
  auto route = routeOutbound(*withShopGateway("public-ingress"), {}, ep("198.19.0.5", 80), 0);
  EXPECT_EQ(route.kind, OutboundKind::kNoWaypoint);
  EXPECT_NE(route.reason.find("class 'public-ingress'"), std::string::npos) << route.reason;
}

TEST(OutboundRouting, WaypointGatewayOfTheWaypointClassIsUsed) {
  auto snap = withShopGateway("sluice-waypoint");
  EXPECT_EQ(routeOutbound(*snap, {}, ep("198.19.0.5", 80), 0).kind, OutboundKind::kWaypoint);
}

TEST(OutboundRouting, PodAddressedTrafficIgnoresTheServicesWaypoint) {
  auto snap = load(kWaypointMesh);
  // cart-1 backs the waypoint-bound service cart, but was dialled by its own IP.
  auto route = routeOutbound(*snap, {}, ep("198.18.1.10", 8080), 0);
  EXPECT_EQ(route.kind, OutboundKind::kHbone);
  EXPECT_EQ(route.target, ep("198.18.1.10", 8080));
  EXPECT_EQ(route.peer_identity.str(), "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST(OutboundRouting, WaypointCallingTheServiceItFrontsReachesTheEndpoint) {
  auto snap = load(kWaypointMesh);
  const auto* waypoint = snap->pod("shop", "shop-wp-7c9d-a1");
  ASSERT_NE(waypoint, nullptr);
  auto route = routeOutbound(*snap, {}, ep("198.19.0.5", 80), 0, waypoint);
  EXPECT_EQ(route.kind, OutboundKind::kHbone);
  EXPECT_EQ(route.target, ep("198.18.1.10", 8080));
  // Another waypoint's instance is an ordinary client of this service.
  const auto* other = snap->pod("infra", "shared-wp-1");
  EXPECT_EQ(routeOutbound(*snap, {}, ep("198.19.0.5", 80), 0, other).kind, OutboundKind::kWaypoint);
}

TEST(OutboundRouting, Ipv6VipReachesTheWaypointOverIpv6WithAnIpv6Authority) {
  auto snap = load(kWaypointMesh);
  // Instance a1 is dual-stack: the tunnel keeps the VIP's family.
  auto route = routeOutbound(*snap, {}, ep("fd00:5::100", 80), 0);
  ASSERT_EQ(route.kind, OutboundKind::kWaypoint) << route.reason;
  EXPECT_EQ(route.target, ep("fd00:5::100", 80));
  EXPECT_EQ(route.hbone_address, ep("fd00:5::50", 15008));
  // Instance b2 has only IPv4: the tunnel crosses families, the authority stays the v6 VIP.
  auto v4_only = routeOutbound(*snap, {}, ep("fd00:5::100", 80), 1);
  ASSERT_EQ(v4_only.kind, OutboundKind::kWaypoint);
  EXPECT_EQ(v4_only.hbone_address, ep("198.18.1.51", 15008));
  EXPECT_EQ(v4_only.target, ep("fd00:5::100", 80));
}

TEST(InboundDecision, OnlyConnectToTheListenersOwnWorkload) {
  auto snap = load(kMesh);
  const auto* cart = snap->pod("shop", "cart-1");
  ASSERT_NE(cart, nullptr);
  EXPECT_EQ(decideInbound(*snap, *cart, "CONNECT", "198.18.1.10:8080").status, 200);
  EXPECT_EQ(decideInbound(*snap, *cart, "CONNECT", "[fd00:5::10]:8080").status, 200);
  EXPECT_EQ(decideInbound(*snap, *cart, "GET", "198.18.1.10:8080").status, 400);
  EXPECT_EQ(decideInbound(*snap, *cart, "CONNECT", "cart:8080").status, 400);
  auto other = decideInbound(*snap, *cart, "CONNECT", "198.18.1.11:8080");
  EXPECT_EQ(other.status, 400);
  EXPECT_NE(other.reason.find("not workload shop/cart-1"), std::string::npos);
}

TEST(InboundDecision, PlaintextFollowsPeerAuthentication) {
  auto strict = load(kMesh + R"(
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls: {mode: STRICT}
  selector: {matchLabels: {app: cart}}
  portLevelMtls: {9090: {mode: PERMISSIVE}}
)");
  const auto* cart = strict->pod("shop", "cart-1");
  EXPECT_FALSE(plaintextAllowed(*strict, *cart, 8080));
  EXPECT_TRUE(plaintextAllowed(*strict, *cart, 9090));
  auto permissive = load(kMesh);
  EXPECT_TRUE(plaintextAllowed(*permissive, *permissive->pod("shop", "cart-1"), 8080));
}

}  // namespace
}  // namespace sluice::ztunnel
