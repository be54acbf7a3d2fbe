// Kubernetes' service rules as both daemons apply them (core/config/service_rules.h) and the
// node's meshed pods (Snapshot::meshedPodsOnNode), shared by the agent and ztunnel.
#include "core/config/service_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config/loader.h"

namespace sluice::config {
namespace {

using boost::asio::ip::make_address;
using ::testing::ElementsAre;

Pod pod(std::vector<const char*> ips, std::map<std::string, uint16_t> named_ports = {}) {
  Pod out;
  out.meta.ns = "shop";
  out.meta.name = "reviews-v1";
  out.service_account = "reviews";
  for (const char* ip : ips) out.ips.push_back(make_address(ip));
  out.named_ports = std::move(named_ports);
  return out;
}

TEST(ServiceRules, ServiceFqdnQualifiesShortNames) {
  EXPECT_EQ(serviceFqdn("reviews", "shop"), "reviews.shop.svc.cluster.local");
  EXPECT_EQ(serviceFqdn("reviews.other", "shop"), "reviews.other.svc.cluster.local");
  EXPECT_EQ(serviceFqdn("reviews.other.svc", "shop"), "reviews.other.svc.cluster.local");
  EXPECT_EQ(serviceFqdn("reviews.shop.svc.cluster.local", "x"), "reviews.shop.svc.cluster.local");
  Service service;
  service.meta.name = "reviews";
  service.meta.ns = "shop";
  EXPECT_EQ(serviceFqdn(service), "reviews.shop.svc.cluster.local");
}

TEST(ServiceRules, AnUnsetTargetPortIsTheServicePort) {
  ServicePort port;
  port.port = 9080;  // targetPort unset (0), as Kubernetes then defaults it
  EXPECT_EQ(resolveTargetPort(port, pod({"198.18.0.31"})), 9080);
  port.target_port = uint16_t{8080};
  EXPECT_EQ(resolveTargetPort(port, pod({"198.18.0.31"})), 8080);
}

TEST(ServiceRules, ANamedTargetPortIsThePodsPortOfThatName) {
  ServicePort port;
  port.port = 80;
  port.target_port = std::string("http");
  EXPECT_EQ(resolveTargetPort(port, pod({"198.18.0.31"}, {{"http", 8080}})), 8080);
  // A pod without that port name is no endpoint of the port
  EXPECT_EQ(resolveTargetPort(port, pod({"198.18.0.31"}, {{"grpc", 9090}})), std::nullopt);
}

TEST(ServiceRules, AVipReachesThePodsAddressOfItsFamilyOnly) {
  const Pod dual = pod({"198.18.0.31", "fd00:5::31"});
  EXPECT_EQ(endpointAddress(dual, make_address("198.19.0.1")), make_address("198.18.0.31"));
  EXPECT_EQ(endpointAddress(dual, make_address("fd00:5::1:1")), make_address("fd00:5::31"));
  const Pod v4_only = pod({"198.18.0.31"});
  EXPECT_EQ(endpointAddress(v4_only, make_address("fd00:5::1:1")), std::nullopt);
}

TEST(ServiceRules, WorkloadIdentityIsTheServiceAccountsSpiffeId) {
  auto id = workloadIdentity(pod({"198.18.0.31"}), "example.org");
  ASSERT_TRUE(id) << id.message();
  EXPECT_EQ(id->str(), "spiffe://example.org/ns/shop/sa/reviews");
}

TEST(ServiceRules, MeshedPodsOnNodeNeedAnAddressButNoUid) {
  // Given an ambient namespace with pods on node-a: one without an IP yet, one without a uid,
  // one opted out, one on another node
  auto loaded = loadString(R"(apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: starting, namespace: shop, uid: 0d3c6c1e-0000-4000-8000-000000000001}
spec: {nodeName: node-a}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: from-a-file, namespace: shop}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 198.18.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: opted-out, namespace: shop, labels: {sluice.dev/dataplane-mode: none}}
spec: {nodeName: node-a}
status: {phase: Running, podIP: 198.18.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere, namespace: shop}
spec: {nodeName: node-b}
status: {phase: Running, podIP: 198.18.2.10}
)",
                           "pods.yaml");
  ASSERT_TRUE(loaded.snapshot);
  // Then the agent enrolls, and ztunnel serves, the same one
  std::vector<std::string> names;
  for (const Pod* meshed : loaded.snapshot->meshedPodsOnNode("node-a"))
    names.push_back(meshed->meta.name);
  EXPECT_THAT(names, ElementsAre("from-a-file"));
}

}  // namespace
}  // namespace sluice::config
