// Routing decisions as pure functions of a snapshot.
#include "ztunnel/routing.h"

#include <gtest/gtest.h>

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

const char* kMesh = R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
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
  auto strict = load(std::string(kMesh) + R"(
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
