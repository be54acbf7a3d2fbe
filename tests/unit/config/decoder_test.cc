// Decoding each kind from YAML: what is read, what is defaulted, and which mistakes are
// rejected with which line and field.
#include "core/config/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using testing::expectRejected;
using ::testing::HasSubstr;
using testing::load;
using testing::onlyReport;
using ::testing::Pair;
using Status = DocumentReport::Status;

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

// ---- Namespace -------------------------------------------------------------------------

TEST(NamespaceDecoding, ReadsNameAndLabels) {
  auto result = load(R"(apiVersion: v1
kind: Namespace
metadata:
  name: shop
  namespace: ignored-for-cluster-scoped
  labels:
    sluice.dev/dataplane-mode: ambient
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const Namespace* ns = result.snapshot->namespaceByName("shop");
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ(ns->meta.ns, "");
  EXPECT_THAT(ns->meta.labels, ElementsAre(Pair("sluice.dev/dataplane-mode", "ambient")));
  EXPECT_EQ(onlyReport(result).ns, "");
}

// ---- Pod containers (what the lab runs) ---------------------------------------------

TEST(PodDecoding, ReadsContainerCommandArgsLiteralEnvAndPorts) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
    - name: server
      image: python:3
      command: [python3, -m, http.server]
      args: ["8080"]
      env:
        - {name: MODE, value: fast}
        - name: FROM_SECRET
          valueFrom: {secretKeyRef: {name: s, key: k}}
      ports: [{containerPort: 8080, name: http}, {containerPort: 9090}]
    - name: sidecarless
      image: busybox
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const Pod* pod = result.snapshot->pod("shop", "web");
  ASSERT_NE(pod, nullptr);
  ASSERT_EQ(pod->containers.size(), 2u);
  const Container& server = pod->containers[0];
  EXPECT_EQ(server.name, "server");
  EXPECT_THAT(server.command, ElementsAre("python3", "-m", "http.server"));
  EXPECT_THAT(server.args, ElementsAre("8080"));
  EXPECT_THAT(server.env, ElementsAre("MODE=fast"));  // valueFrom is not resolved
  EXPECT_THAT(server.ports, ElementsAre(8080, 9090));
  EXPECT_TRUE(pod->containers[1].command.empty());
  EXPECT_EQ(pod->named_ports.at("http"), 8080);
}

// ---- Pod ------------------------------------------------------------------------------

TEST(PodDecoding, ReadsEveryFieldSluiceUses) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata:
  name: web-7f9c
  namespace: shop
  uid: 0b7e4f8c-1111-2222-3333-444455556666
  labels: {app: web, version: v1}
  annotations:
    note: hello
spec:
  nodeName: node-a
  serviceAccountName: web-sa
  hostNetwork: false
  containers:
  - name: app
    image: nginx
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 9090}
status:
  phase: Running
  podIP: 10.0.0.5
  podIPs:
  - ip: 10.0.0.5
  - ip: fd00::5
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const Pod* pod = result.snapshot->pod("shop", "web-7f9c");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->meta.uid, "0b7e4f8c-1111-2222-3333-444455556666");
  EXPECT_THAT(pod->meta.labels, ElementsAre(Pair("app", "web"), Pair("version", "v1")));
  EXPECT_THAT(pod->meta.annotations, ElementsAre(Pair("note", "hello")));
  EXPECT_EQ(pod->node_name, "node-a");
  EXPECT_EQ(pod->service_account, "web-sa");
  EXPECT_FALSE(pod->host_network);
  EXPECT_EQ(pod->phase, "Running");
  EXPECT_THAT(pod->ips, ElementsAre(ip("10.0.0.5"), ip("fd00::5")));
  EXPECT_THAT(pod->named_ports, ElementsAre(Pair("http", 8080)));
  EXPECT_EQ(onlyReport(result).line, 1);
}

TEST(PodDecoding, DefaultsNamespaceAndServiceAccount) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata: {name: lonely}
)");
  ASSERT_NE(result.snapshot, nullptr);
  const Pod* pod = result.snapshot->pod("default", "lonely");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->service_account, "default");
  EXPECT_TRUE(pod->ips.empty());
  EXPECT_EQ(pod->phase, "");
  EXPECT_EQ(onlyReport(result).ns, "default");
}

TEST(PodDecoding, FallsBackToDeprecatedServiceAccountField) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata: {name: old, namespace: shop}
spec: {serviceAccount: legacy}
)");
  ASSERT_NE(result.snapshot, nullptr);
  EXPECT_EQ(result.snapshot->pod("shop", "old")->service_account, "legacy");
}

TEST(PodDecoding, IgnoresFieldsSluiceDoesNotRead) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata:
  name: busy
  creationTimestamp: "2024-01-01T00:00:00Z"
  ownerReferences: [{kind: ReplicaSet, name: busy-123}]
spec:
  containers: [{name: c, image: busybox, resources: {limits: {cpu: 1}}}]
  tolerations: []
  somethingFromTheFuture: {a: b}
status:
  conditions: [{type: Ready, status: "True"}]
  hostIP: 192.168.1.10
  phase: Pending
)");
  EXPECT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  EXPECT_EQ(onlyReport(result).status, Status::kAccepted);
}

TEST(PodDecoding, RejectsInvalidPodIpWithLineAndField) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
status:
  podIPs:
  - ip: 10.0.0.5
  - ip: 10.0.0.300
)"),
                 7, "status.podIPs[1].ip", "must be an IPv4 or IPv6 address, got \"10.0.0.300\"");
}

TEST(PodDecoding, RejectsPodIpOfWrongType) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
status:
  podIP: [10.0.0.1]
)"),
                 5, "status.podIP", "must be a string, got a list");
}

TEST(PodDecoding, RejectsQuotedBoolean) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: "true"
)"),
                 5, "spec.hostNetwork", "must be true or false");
}

TEST(PodDecoding, RejectsUnknownPhase) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
status: {phase: Runing}
)"),
                 4, "status.phase", "got \"Runing\"");
}

TEST(PodDecoding, RejectsContainerPortOutOfRange) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    ports:
    - name: http
      containerPort: 0
)"),
                 9, "spec.containers[0].ports[0].containerPort", "1..65535");
}

TEST(PodDecoding, RejectsServiceAccountThatCannotBeAnIdentity) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {serviceAccountName: "../admin"}
)"),
                 4, "spec.serviceAccountName", "RFC 1123");
}

// ---- metadata (shared by every kind) ---------------------------------------------------

TEST(MetadataDecoding, RejectsMissingName) {
  expectRejected(load(R"(apiVersion: v1
kind: Pod
metadata:
  namespace: shop
spec: {}
)"),
                 3, "metadata.name", "required");
}

TEST(MetadataDecoding, RejectsMissingMetadata) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
spec: {}
)"),
                 1, "metadata", "required");
}

TEST(MetadataDecoding, RejectsNameThatIsNotAKubernetesName) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata:
  name: Web_Frontend
)"),
                 4, "metadata.name", "RFC 1123");
}

TEST(MetadataDecoding, RejectsLabelsOfWrongType) {
  expectRejected(load(R"(apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
  - app
)"),
                 5, "metadata.labels", "must be a mapping, got a list");
}

TEST(MetadataDecoding, RejectsLabelValueThatIsAMapping) {
  expectRejected(load(R"(apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    app: {nested: true}
)"),
                 6, "metadata.labels[app]", "must be a string");
}

// ---- Service --------------------------------------------------------------------------

TEST(ServiceDecoding, ReadsDualStackAddressesPortsAndSelector) {
  auto result = load(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::10"]
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
    appProtocol: http
  - name: grpc
    port: 9000
    targetPort: grpc-port
    protocol: TCP
  - name: dns
    port: 53
    protocol: UDP
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const Service* service = result.snapshot->service("shop", "web");
  ASSERT_NE(service, nullptr);
  EXPECT_THAT(service->cluster_ips, ElementsAre(ip("10.96.0.10"), ip("fd00:96::10")));
  EXPECT_FALSE(service->headless);
  EXPECT_THAT(service->selector, ElementsAre(Pair("app", "web")));
  ASSERT_EQ(service->ports.size(), 3u);
  EXPECT_EQ(service->ports[0].name, "http");
  EXPECT_EQ(service->ports[0].port, 80);
  EXPECT_EQ(std::get<uint16_t>(service->ports[0].target_port), 8080);
  EXPECT_EQ(service->ports[0].protocol, "TCP");
  EXPECT_EQ(service->ports[0].app_protocol, "http");
  EXPECT_EQ(std::get<std::string>(service->ports[1].target_port), "grpc-port");
  EXPECT_EQ(std::get<uint16_t>(service->ports[2].target_port), 53);  // defaults to port
  EXPECT_EQ(service->ports[2].protocol, "UDP");
}

TEST(ServiceDecoding, HeadlessServiceHasNoClusterIps) {
  auto result = load(R"(apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  clusterIPs: [None]
  ports: [{port: 5432}]
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const Service* service = result.snapshot->service("default", "db");
  EXPECT_TRUE(service->headless);
  EXPECT_TRUE(service->cluster_ips.empty());
}

TEST(ServiceDecoding, RejectsPortOutOfRange) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - name: http
    port: 70000
)"),
                 7, "spec.ports[0].port", "must be a port number 1..65535, got \"70000\"");
}

TEST(ServiceDecoding, RejectsMissingPort) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - name: http
    targetPort: 8080
)"),
                 6, "spec.ports[0].port", "required");
}

TEST(ServiceDecoding, RejectsQuotedNumericTargetPortAsPortName) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - port: 80
    targetPort: "8080"
)"),
                 7, "spec.ports[0].targetPort", "IANA port name");
}

TEST(ServiceDecoding, RejectsInvalidClusterIp) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIPs:
  - 10.96.0.1
  - not-an-ip
)"),
                 7, "spec.clusterIPs[1]", "must be an IPv4 or IPv6 address");
}

TEST(ServiceDecoding, RejectsHeadlessCombinedWithAddress) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  clusterIPs: [10.96.0.1]
)"),
                 5, "spec.clusterIP", "cannot be combined");
}

TEST(ServiceDecoding, RejectsUnknownProtocol) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - port: 80
    protocol: HTTP
)"),
                 7, "spec.ports[0].protocol", "must be one of TCP, UDP, SCTP");
}

TEST(ServiceDecoding, RejectsDuplicatePort) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: a, port: 80}
  - {name: b, port: 80}
)"),
                 7, "spec.ports[1].port", "duplicate port 80/TCP");
}

TEST(ServiceDecoding, RejectsPortsThatAreNotAList) {
  expectRejected(load(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: {port: 80}
)"),
                 5, "spec.ports", "must be a list, got a mapping");
}

// ---- PeerAuthentication ---------------------------------------------------------------

TEST(PeerAuthenticationDecoding, ReadsWorkloadPolicyWithPortLevelModes) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web-strict, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: PERMISSIVE
    9090:
      mode: DISABLE
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  ASSERT_EQ(result.snapshot->peerAuthentications().size(), 1u);
  const PeerAuthentication& policy = result.snapshot->peerAuthentications().front();
  ASSERT_TRUE(policy.selector.has_value());
  EXPECT_THAT(*policy.selector, ElementsAre(Pair("app", "web")));
  EXPECT_EQ(policy.mode, MtlsMode::kStrict);
  EXPECT_THAT(policy.port_modes,
              ElementsAre(Pair(8080, MtlsMode::kPermissive), Pair(9090, MtlsMode::kDisable)));
}

TEST(PeerAuthenticationDecoding, AcceptsV1beta1AndTreatsMissingSpecAsNamespaceWideUnset) {
  auto result = load(R"(apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  const PeerAuthentication& policy = result.snapshot->peerAuthentications().front();
  EXPECT_FALSE(policy.selector.has_value());
  EXPECT_EQ(policy.mode, MtlsMode::kUnset);
}

TEST(PeerAuthenticationDecoding, EmptyMatchLabelsMeansNamespaceWide) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  selector: {matchLabels: {}}
  mtls: {mode: STRICT}
)");
  ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
  EXPECT_FALSE(result.snapshot->peerAuthentications().front().selector.has_value());
}

TEST(PeerAuthenticationDecoding, RejectsUnknownFieldInSpec) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtsl:
    mode: STRICT
)"),
                 5, "spec.mtsl", "unknown field (known: selector, mtls, portLevelMtls)");
}

TEST(PeerAuthenticationDecoding, RejectsUnknownNestedField) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls:
    mode: STRICT
    strict: true
)"),
                 7, "spec.mtls.strict", "unknown field (known: mode)");
}

TEST(PeerAuthenticationDecoding, RejectsMisspelledTopLevelSpec) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
sepc:
  mtls: {mode: STRICT}
)"),
                 4, "sepc", "unknown field");
}

TEST(PeerAuthenticationDecoding, RejectsModeInWrongCase) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls:
    mode: strict
)"),
                 6, "spec.mtls.mode",
                 "must be one of UNSET, DISABLE, PERMISSIVE, STRICT, got \"strict\"");
}

TEST(PeerAuthenticationDecoding, RejectsPortLevelKeyThatIsNotAPort) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  portLevelMtls:
    http:
      mode: DISABLE
)"),
                 7, "spec.portLevelMtls[http]", "key must be a port number");
}

TEST(PeerAuthenticationDecoding, RejectsPortLevelModesWithoutSelector) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
)"),
                 6, "spec.portLevelMtls", "requires spec.selector.matchLabels");
}

TEST(PeerAuthenticationDecoding, RejectsSelectorOfWrongType) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: shop}
spec:
  selector: app=web
)"),
                 5, "spec.selector", "must be a mapping, got \"app=web\"");
}

TEST(PeerAuthenticationDecoding, RejectsDuplicateField) {
  expectRejected(load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: shop}
spec:
  mtls: {mode: STRICT}
  mtls: {mode: DISABLE}
)"),
                 6, "spec.mtls", "duplicate field");
}

// ---- kinds, versions and document shapes ------------------------------------------------

TEST(KindDecoding, IgnoresKindSluiceDoesNotUse) {
  auto result = load(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 3}
)");
  ASSERT_NE(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.status, Status::kIgnored);
  EXPECT_EQ(report.kind, "Deployment");
  EXPECT_EQ(report.ns, "shop");
  EXPECT_EQ(report.name, "web");
  EXPECT_EQ(report.reason, "kind not used by Sluice");
}

TEST(KindDecoding, IgnoresKnownKindUnderUnknownApiVersion) {
  auto result = load(R"(apiVersion: security.istio.io/v2
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {anything: goes}
)");
  ASSERT_NE(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.status, Status::kIgnored);
  EXPECT_THAT(report.reason, HasSubstr("known: security.istio.io/v1, security.istio.io/v1beta1"));
  EXPECT_TRUE(result.snapshot->peerAuthentications().empty());
}

TEST(KindDecoding, RejectsDocumentWithoutKind) {
  expectRejected(load(R"(apiVersion: v1
metadata: {name: web}
)"),
                 1, "kind", "required");
}

TEST(KindDecoding, RejectsDocumentWithoutApiVersion) {
  expectRejected(load(R"(kind: Pod
metadata: {name: web}
)"),
                 1, "apiVersion", "required");
}

TEST(KindDecoding, RejectsDocumentThatIsNotAMapping) {
  expectRejected(load("- just\n- a list\n"), 1, "", "must be a mapping");
}

TEST(KindDecoding, DecodeObjectAsFillsInKindForTypedListItems) {
  YAML::Node item = YAML::Load("metadata: {name: web, namespace: shop}\nstatus: {phase: Running}");
  Decoded decoded = decodeObjectAs(item, "v1", "Pod");
  ASSERT_EQ(decoded.report.status, Status::kAccepted) << decoded.report.reason;
  ASSERT_TRUE(decoded.object.has_value());
  EXPECT_EQ(kindOf(*decoded.object), "Pod");
  EXPECT_EQ(std::get<Pod>(*decoded.object).phase, "Running");
}

TEST(KindDecoding, DecodesKubernetesApiJson) {
  // What the API server sends on a watch: JSON, which is YAML, through the same decoder.
  YAML::Node object = YAML::Load(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop",)"
      R"("resourceVersion":"42"},"spec":{"clusterIP":"10.96.0.7","ports":[{"port":80,)"
      R"("targetPort":"http","protocol":"TCP"}],"selector":{"app":"web"}}})");
  Decoded decoded = decodeObject(object);
  ASSERT_EQ(decoded.report.status, Status::kAccepted) << decoded.report.reason;
  const Service& service = std::get<Service>(*decoded.object);
  EXPECT_EQ(std::get<std::string>(service.ports[0].target_port), "http");
  EXPECT_EQ(service.cluster_ips.front(), ip("10.96.0.7"));
}

}  // namespace
}  // namespace sluice::config
