// Snapshot queries: lookups by address and name, endpoints, enrollment and mTLS policy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

// Header-only Boost.JSON, only to check that the dump is valid JSON (sluice_config's tests do
// not link the compiled library).
#include <boost/json/src.hpp>

#include "core/config/snapshot.h"
#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

ObjectMeta meta(std::string ns, std::string name, std::map<std::string, std::string> labels = {}) {
  ObjectMeta meta;
  meta.name = std::move(name);
  meta.ns = std::move(ns);
  meta.labels = std::move(labels);
  return meta;
}

Pod runningPod(std::string ns, std::string name, const char* address,
               std::map<std::string, std::string> labels = {}, std::string node = "node-a") {
  Pod pod;
  pod.meta = meta(std::move(ns), std::move(name), std::move(labels));
  pod.node_name = std::move(node);
  pod.phase = "Running";
  pod.ips = {ip(address)};
  return pod;
}

Namespace ambientNamespace(std::string name) {
  return Namespace{.meta = meta("", std::move(name), {{"sluice.dev/dataplane-mode", "ambient"}})};
}

PeerAuthentication policy(std::string ns, std::string name, MtlsMode mode,
                          std::optional<std::map<std::string, std::string>> selector = {},
                          std::map<uint16_t, MtlsMode> ports = {}) {
  return PeerAuthentication{.meta = meta(std::move(ns), std::move(name)),
                            .selector = std::move(selector),
                            .mode = mode,
                            .port_modes = std::move(ports)};
}

std::vector<std::string> names(const std::vector<const Pod*>& pods) {
  std::vector<std::string> out;
  for (const Pod* pod : pods) out.push_back(pod->meta.name);
  return out;
}

// ---- lookups --------------------------------------------------------------------------

TEST(SnapshotLookup, FindsPodByEachOfItsAddresses) {
  ObjectSet objects;
  Pod pod = runningPod("shop", "web", "10.0.0.5");
  pod.ips.push_back(ip("fd00::5"));
  objects.pods.push_back(pod);
  auto snapshot = Snapshot::build(std::move(objects));
  ASSERT_NE(snapshot->podByIp(ip("10.0.0.5")), nullptr);
  EXPECT_EQ(snapshot->podByIp(ip("10.0.0.5"))->meta.name, "web");
  EXPECT_EQ(snapshot->podByIp(ip("fd00::5")), snapshot->podByIp(ip("10.0.0.5")));
  EXPECT_EQ(snapshot->podByIp(ip("::ffff:10.0.0.5")), snapshot->podByIp(ip("10.0.0.5")));
  EXPECT_EQ(snapshot->podByIp(ip("10.0.0.6")), nullptr);
}

TEST(SnapshotLookup, NeverAttributesAHostNetworkAddressToAPod) {
  ObjectSet objects;
  Pod host = runningPod("kube-system", "proxy", "192.168.1.10");
  host.host_network = true;
  objects.pods.push_back(host);
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_EQ(snapshot->podByIp(ip("192.168.1.10")), nullptr);
  EXPECT_NE(snapshot->pod("kube-system", "proxy"), nullptr);
}

TEST(SnapshotLookup, PrefersRunningPodWhenAFinishedPodKeepsTheSameAddress) {
  ObjectSet objects;
  Pod finished = runningPod("shop", "a-job", "10.0.0.9");
  finished.phase = "Succeeded";
  objects.pods.push_back(runningPod("shop", "z-web", "10.0.0.9"));
  objects.pods.push_back(finished);
  auto snapshot = Snapshot::build(std::move(objects));
  ASSERT_NE(snapshot->podByIp(ip("10.0.0.9")), nullptr);
  EXPECT_EQ(snapshot->podByIp(ip("10.0.0.9"))->meta.name, "z-web");
}

TEST(SnapshotLookup, FindsObjectsByName) {
  ObjectSet objects;
  objects.namespaces.push_back(ambientNamespace("shop"));
  objects.namespaces.push_back(ambientNamespace("blog"));
  objects.pods.push_back(runningPod("shop", "web", "10.0.0.5"));
  objects.pods.push_back(runningPod("blog", "web", "10.0.1.5"));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_EQ(snapshot->pod("blog", "web")->ips.front(), ip("10.0.1.5"));
  EXPECT_EQ(snapshot->pod("shop", "web")->ips.front(), ip("10.0.0.5"));
  EXPECT_EQ(snapshot->pod("shop", "api"), nullptr);
  EXPECT_EQ(snapshot->pod("web", "shop"), nullptr);
  EXPECT_NE(snapshot->namespaceByName("blog"), nullptr);
  EXPECT_EQ(snapshot->namespaceByName("news"), nullptr);
}

TEST(SnapshotLookup, FindsServiceByEachClusterIp) {
  ObjectSet objects;
  Service service;
  service.meta = meta("shop", "web");
  service.cluster_ips = {ip("10.96.0.10"), ip("fd00:96::10")};
  objects.services.push_back(service);
  auto snapshot = Snapshot::build(std::move(objects));
  ASSERT_NE(snapshot->serviceByVip(ip("10.96.0.10")), nullptr);
  EXPECT_EQ(snapshot->serviceByVip(ip("10.96.0.10"))->meta.name, "web");
  EXPECT_EQ(snapshot->serviceByVip(ip("fd00:96::10")), snapshot->serviceByVip(ip("10.96.0.10")));
  EXPECT_EQ(snapshot->serviceByVip(ip("10.96.0.11")), nullptr);
}

TEST(SnapshotLookup, ListsPodsOnANode) {
  ObjectSet objects;
  objects.pods.push_back(runningPod("shop", "a", "10.0.0.1", {}, "node-a"));
  objects.pods.push_back(runningPod("shop", "b", "10.0.0.2", {}, "node-b"));
  objects.pods.push_back(runningPod("blog", "c", "10.0.0.3", {}, "node-a"));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_THAT(names(snapshot->podsOnNode("node-a")), UnorderedElementsAre("a", "c"));
  EXPECT_THAT(names(snapshot->podsOnNode("node-b")), ElementsAre("b"));
  EXPECT_THAT(snapshot->podsOnNode("node-z"), IsEmpty());
}

TEST(SnapshotLookup, VersionsIncreaseWithEachBuild) {
  auto first = Snapshot::build({});
  auto second = Snapshot::build({});
  EXPECT_LT(first->version(), second->version());
}

// ---- endpoints ------------------------------------------------------------------------

class Endpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    objects_.pods.push_back(runningPod("shop", "web-1", "10.0.0.1", {{"app", "web"}, {"v", "1"}}));
    objects_.pods.push_back(runningPod("shop", "web-2", "10.0.0.2", {{"app", "web"}, {"v", "2"}}));
    Pod pending = runningPod("shop", "web-3", "10.0.0.3", {{"app", "web"}});
    pending.phase = "Pending";
    objects_.pods.push_back(pending);
    Pod no_ip = runningPod("shop", "web-4", "10.0.0.4", {{"app", "web"}});
    no_ip.ips.clear();
    objects_.pods.push_back(no_ip);
    objects_.pods.push_back(runningPod("shop", "api-1", "10.0.0.5", {{"app", "api"}}));
    objects_.pods.push_back(runningPod("blog", "web-1", "10.0.1.1", {{"app", "web"}}));
  }

  Service service(std::map<std::string, std::string> selector) {
    Service service;
    service.meta = meta("shop", "web");
    service.selector = std::move(selector);
    return service;
  }

  ObjectSet objects_;
};

TEST_F(Endpoints, AreRunningPodsOfTheServiceNamespaceMatchingItsSelector) {
  objects_.services.push_back(service({{"app", "web"}}));
  auto snapshot = Snapshot::build(std::move(objects_));
  const std::vector<const Pod*> endpoints = snapshot->endpoints(*snapshot->service("shop", "web"));
  EXPECT_THAT(names(endpoints), ElementsAre("web-1", "web-2"));
  for (const Pod* pod : endpoints) EXPECT_EQ(pod->meta.ns, "shop");
}

TEST_F(Endpoints, RequireEverySelectorLabel) {
  objects_.services.push_back(service({{"app", "web"}, {"v", "2"}}));
  auto snapshot = Snapshot::build(std::move(objects_));
  EXPECT_THAT(names(snapshot->endpoints(*snapshot->service("shop", "web"))), ElementsAre("web-2"));
}

TEST_F(Endpoints, AreNoneForAServiceWithoutSelector) {
  objects_.services.push_back(service({}));
  auto snapshot = Snapshot::build(std::move(objects_));
  EXPECT_THAT(snapshot->endpoints(*snapshot->service("shop", "web")), IsEmpty());
}

TEST_F(Endpoints, AreComputedForAServiceFromAnotherSnapshot) {
  auto snapshot = Snapshot::build(std::move(objects_));
  Service elsewhere = service({{"app", "api"}});
  EXPECT_THAT(names(snapshot->endpoints(elsewhere)), ElementsAre("api-1"));
}

// ---- enrollment -----------------------------------------------------------------------

TEST(Enrollment, PodInAmbientNamespaceIsMeshed) {
  ObjectSet objects;
  objects.namespaces.push_back(ambientNamespace("shop"));
  objects.pods.push_back(runningPod("shop", "web", "10.0.0.1"));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_TRUE(snapshot->isMeshed(*snapshot->pod("shop", "web")));
}

TEST(Enrollment, PodOptingOutIsNotMeshed) {
  ObjectSet objects;
  objects.namespaces.push_back(ambientNamespace("shop"));
  objects.pods.push_back(
      runningPod("shop", "legacy", "10.0.0.1", {{"sluice.dev/dataplane-mode", "none"}}));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("shop", "legacy")));
}

TEST(Enrollment, HostNetworkPodIsNotMeshed) {
  ObjectSet objects;
  objects.namespaces.push_back(ambientNamespace("shop"));
  Pod pod = runningPod("shop", "agent", "192.168.1.10");
  pod.host_network = true;
  objects.pods.push_back(pod);
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("shop", "agent")));
}

TEST(Enrollment, PodInUnlabelledOrOtherModeOrUnknownNamespaceIsNotMeshed) {
  ObjectSet objects;
  objects.namespaces.push_back(Namespace{.meta = meta("", "plain")});
  objects.namespaces.push_back(
      Namespace{.meta = meta("", "sidecar", {{"sluice.dev/dataplane-mode", "sidecar"}})});
  objects.pods.push_back(runningPod("plain", "a", "10.0.0.1"));
  objects.pods.push_back(runningPod("sidecar", "b", "10.0.0.2"));
  objects.pods.push_back(runningPod("nowhere", "c", "10.0.0.3"));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("plain", "a")));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("sidecar", "b")));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("nowhere", "c")));
}

TEST(Enrollment, PodLabelAloneDoesNotEnrollItOutsideAnAmbientNamespace) {
  ObjectSet objects;
  objects.namespaces.push_back(Namespace{.meta = meta("", "plain")});
  objects.pods.push_back(
      runningPod("plain", "a", "10.0.0.1", {{"sluice.dev/dataplane-mode", "ambient"}}));
  auto snapshot = Snapshot::build(std::move(objects));
  EXPECT_FALSE(snapshot->isMeshed(*snapshot->pod("plain", "a")));
}

// ---- effective mTLS -------------------------------------------------------------------

class EffectiveMtls : public ::testing::Test {
 protected:
  MtlsMode modeFor(uint16_t port, SnapshotOptions options = {}) {
    objects_.pods.push_back(runningPod("shop", "web", "10.0.0.1", {{"app", "web"}}));
    auto snapshot = Snapshot::build(std::move(objects_), std::move(options));
    return snapshot->effectiveMtls(*snapshot->pod("shop", "web"), port);
  }
  ObjectSet objects_;
};

TEST_F(EffectiveMtls, IsPermissiveWithoutAnyPolicy) {
  EXPECT_EQ(modeFor(8080), MtlsMode::kPermissive);
}

TEST_F(EffectiveMtls, MeshWidePolicyAppliesEverywhere) {
  objects_.peer_authentications.push_back(policy("istio-system", "default", MtlsMode::kStrict));
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, RootNamespaceIsConfigurable) {
  objects_.peer_authentications.push_back(policy("istio-system", "default", MtlsMode::kStrict));
  objects_.peer_authentications.push_back(policy("mesh-root", "default", MtlsMode::kDisable));
  EXPECT_EQ(modeFor(8080, SnapshotOptions{.root_namespace = "mesh-root"}), MtlsMode::kDisable);
}

TEST_F(EffectiveMtls, NamespacePolicyOverridesMeshWide) {
  objects_.peer_authentications.push_back(policy("istio-system", "default", MtlsMode::kStrict));
  objects_.peer_authentications.push_back(policy("shop", "default", MtlsMode::kPermissive));
  EXPECT_EQ(modeFor(8080), MtlsMode::kPermissive);
}

TEST_F(EffectiveMtls, OfSeveralMatchingWorkloadPoliciesTheOldestApplies) {
  // The newer one sorts first by name: age decides, as in Istio.
  const std::map<std::string, std::string> web{{"app", "web"}};
  objects_.peer_authentications.push_back(policy("shop", "a-new", MtlsMode::kPermissive, web));
  objects_.peer_authentications.back().meta.creation_timestamp = "2026-12-01T00:00:00Z";
  objects_.peer_authentications.push_back(policy("shop", "b-old", MtlsMode::kStrict, web));
  objects_.peer_authentications.back().meta.creation_timestamp = "2026-01-01T00:00:00Z";
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, OldestNamespacePolicyAppliesWhenNoWorkloadPolicyMatches) {
  objects_.peer_authentications.push_back(policy("shop", "a-new", MtlsMode::kPermissive));
  objects_.peer_authentications.back().meta.creation_timestamp = "2026-12-01T00:00:00Z";
  objects_.peer_authentications.push_back(policy("shop", "b-old", MtlsMode::kDisable));
  objects_.peer_authentications.back().meta.creation_timestamp = "2026-01-01T00:00:00Z";
  EXPECT_EQ(modeFor(8080), MtlsMode::kDisable);
}

TEST_F(EffectiveMtls, WorkloadPolicyOverridesNamespace) {
  objects_.peer_authentications.push_back(policy("shop", "default", MtlsMode::kPermissive));
  objects_.peer_authentications.push_back(
      policy("shop", "web", MtlsMode::kStrict, std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, PortLevelModeOverridesWorkloadModeOnThatPortOnly) {
  objects_.peer_authentications.push_back(policy("shop", "web", MtlsMode::kStrict,
                                                 std::map<std::string, std::string>{{"app", "web"}},
                                                 {{9090, MtlsMode::kDisable}}));
  EXPECT_EQ(modeFor(9090), MtlsMode::kDisable);
}

TEST_F(EffectiveMtls, PortLevelModeDoesNotLeakToOtherPorts) {
  objects_.peer_authentications.push_back(policy("shop", "web", MtlsMode::kStrict,
                                                 std::map<std::string, std::string>{{"app", "web"}},
                                                 {{9090, MtlsMode::kDisable}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, UnsetWorkloadModeInheritsNamespaceMode) {
  objects_.peer_authentications.push_back(policy("shop", "default", MtlsMode::kDisable));
  objects_.peer_authentications.push_back(
      policy("shop", "web", MtlsMode::kUnset, std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kDisable);
}

TEST_F(EffectiveMtls, UnsetPortLevelModeInheritsWorkloadMode) {
  objects_.peer_authentications.push_back(policy("shop", "web", MtlsMode::kStrict,
                                                 std::map<std::string, std::string>{{"app", "web"}},
                                                 {{8080, MtlsMode::kUnset}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, UnsetNamespaceModeInheritsMeshWideMode) {
  objects_.peer_authentications.push_back(policy("istio-system", "default", MtlsMode::kStrict));
  objects_.peer_authentications.push_back(policy("shop", "default", MtlsMode::kUnset));
  EXPECT_EQ(modeFor(8080), MtlsMode::kStrict);
}

TEST_F(EffectiveMtls, WorkloadPolicyNotMatchingThePodDoesNotApply) {
  objects_.peer_authentications.push_back(policy("shop", "default", MtlsMode::kPermissive));
  objects_.peer_authentications.push_back(
      policy("shop", "api", MtlsMode::kStrict, std::map<std::string, std::string>{{"app", "api"}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kPermissive);
}

TEST_F(EffectiveMtls, PoliciesOfOtherNamespacesDoNotApply) {
  objects_.peer_authentications.push_back(policy("blog", "default", MtlsMode::kStrict));
  objects_.peer_authentications.push_back(
      policy("blog", "web", MtlsMode::kStrict, std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kPermissive);
}

TEST_F(EffectiveMtls, SelectorPolicyInRootNamespaceIsNotMeshWide) {
  objects_.peer_authentications.push_back(
      policy("istio-system", "web", MtlsMode::kStrict,
             std::map<std::string, std::string>{{"app", "web"}}));
  EXPECT_EQ(modeFor(8080), MtlsMode::kPermissive);
}

// ---- config dump ----------------------------------------------------------------------

TEST(ConfigDump, IsValidJsonWithEveryObject) {
  ObjectSet objects;
  objects.namespaces.push_back(ambientNamespace("shop"));
  Pod pod = runningPod("shop", "web", "10.0.0.1", {{"app", "web"}, {"odd", "\"quote\"\n\xff"}});
  pod.named_ports["http"] = 8080;
  objects.pods.push_back(pod);
  Service service;
  service.meta = meta("shop", "web");
  service.cluster_ips = {ip("10.96.0.1")};
  service.selector = {{"app", "web"}};
  ServicePort port;
  port.name = "http";
  port.port = 80;
  port.target_port = std::string("http");
  service.ports.push_back(port);
  objects.services.push_back(service);
  objects.peer_authentications.push_back(policy("shop", "web", MtlsMode::kStrict,
                                                std::map<std::string, std::string>{{"app", "web"}},
                                                {{9090, MtlsMode::kDisable}}));
  auto snapshot = Snapshot::build(std::move(objects));

  boost::system::error_code error;
  boost::json::value dump = boost::json::parse(snapshot->toJson(), error);
  ASSERT_FALSE(error) << error.message() << "\n" << snapshot->toJson();
  const auto& root = dump.as_object();
  EXPECT_EQ(root.at("version").to_number<uint64_t>(), snapshot->version());
  const auto& dumped_pod = root.at("pods").as_array().at(0).as_object();
  EXPECT_EQ(dumped_pod.at("metadata").at("name").as_string(), "web");
  EXPECT_EQ(dumped_pod.at("metadata").at("labels").at("odd").as_string(),
            "\"quote\"\n\xEF\xBF\xBD");
  EXPECT_EQ(dumped_pod.at("meshed").as_bool(), true);
  EXPECT_EQ(dumped_pod.at("namedPorts").at("http").to_number<int>(), 8080);
  const auto& dumped_service = root.at("services").as_array().at(0).as_object();
  EXPECT_EQ(dumped_service.at("ports").at(0).at("targetPort").as_string(), "http");
  EXPECT_EQ(dumped_service.at("endpoints").at(0).as_string(), "web");
  const auto& dumped_policy = root.at("peerAuthentications").as_array().at(0).as_object();
  EXPECT_EQ(dumped_policy.at("mode").as_string(), "STRICT");
  EXPECT_EQ(dumped_policy.at("portLevelMtls").at("9090").as_string(), "DISABLE");
  EXPECT_EQ(root.at("namespaces").as_array().size(), 1u);
}

}  // namespace
}  // namespace sluice::config
