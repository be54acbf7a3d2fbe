// The L7 kinds in a snapshot: the issue's example read back exactly, the waypoint's lookups,
// and the configuration dump.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

// Declarations only: snapshot_test.cc compiles the header-only library into this executable.
#include <boost/json.hpp>

#include "core/config/snapshot.h"
#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::load;
using ::testing::Pair;

// The VirtualService of issue 4, as Istio documents it, with the DestinationRule defining its
// subsets and a namespace-wide STRICT PeerAuthentication.
constexpr std::string_view kIssueExample = R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: api-server}
spec:
  hosts: [api-server]
  http:
    - route:
        - destination: {host: api-server, subset: v1}
          weight: 90
        - destination: {host: api-server, subset: v2}
          weight: 10
      timeout: 5s
      retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-server}
spec:
  host: api-server
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
)";

std::string allReports(const LoadResult& result) {
  std::string out;
  for (const DocumentReport& report : result.documents) out += formatReport(report) + "\n";
  return out;
}

TEST(TrafficSnapshot, LoadsTheIssuesExampleExactlyAsWritten) {
  auto result = load(kIssueExample);
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  EXPECT_EQ(result.count(DocumentReport::Status::kAccepted), 3u);
  const Snapshot& snapshot = *result.snapshot;

  auto services = snapshot.virtualServices("default");
  ASSERT_EQ(services.size(), 1u);
  const VirtualService& service = services[0];
  EXPECT_EQ(service.meta.name, "api-server");
  EXPECT_THAT(service.hosts, ElementsAre("api-server"));
  EXPECT_THAT(service.gateways, IsEmpty());
  ASSERT_EQ(service.http.size(), 1u);
  const VirtualServiceRoute& route = service.http[0];
  EXPECT_THAT(route.match, IsEmpty());
  ASSERT_EQ(route.route.size(), 2u);
  EXPECT_EQ(route.route[0].destination.host, "api-server");
  EXPECT_EQ(route.route[0].destination.subset, "v1");
  EXPECT_EQ(route.route[0].weight, 90u);
  EXPECT_EQ(route.route[1].destination.subset, "v2");
  EXPECT_EQ(route.route[1].weight, 10u);
  EXPECT_EQ(route.timeout, milliseconds(5000));
  ASSERT_TRUE(route.retries.has_value());
  EXPECT_EQ(route.retries->attempts, 3u);
  EXPECT_EQ(route.retries->per_try_timeout, milliseconds(2000));
  EXPECT_THAT(route.retries->retry_on, ElementsAre("5xx"));
  EXPECT_THAT(route.retries->retry_on_statuses, IsEmpty());
  EXPECT_FALSE(route.fault.has_value());
  EXPECT_FALSE(route.redirect.has_value());

  const DestinationRule* rule = snapshot.destinationRule("default", "api-server");
  ASSERT_NE(rule, nullptr);
  ASSERT_EQ(rule->subsets.size(), 2u);
  EXPECT_EQ(rule->subsets[0].name, "v1");
  EXPECT_THAT(rule->subsets[0].labels, ElementsAre(Pair("version", "v1")));
  EXPECT_EQ(rule->subsets[1].name, "v2");
  EXPECT_THAT(rule->subsets[1].labels, ElementsAre(Pair("version", "v2")));
  EXPECT_FALSE(rule->traffic_policy.has_value());

  ASSERT_EQ(snapshot.peerAuthentications().size(), 1u);
  EXPECT_EQ(snapshot.peerAuthentications()[0].mode, MtlsMode::kStrict);
  Pod pod;
  pod.meta.ns = "default";
  EXPECT_EQ(snapshot.effectiveMtls(pod, 8080), MtlsMode::kStrict);
}

TEST(TrafficSnapshot, FindsDestinationRuleByShortOrQualifiedHostThenByWildcard) {
  auto result = load(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a-shop-wide, namespace: shop}
spec: {host: "*.shop.svc.cluster.local"}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: everything, namespace: shop}
spec: {host: "*"}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: other}
spec: {host: reviews.shop.svc.cluster.local}
)");
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  const Snapshot& snapshot = *result.snapshot;
  auto nameOf = [](const DestinationRule* rule) {
    return rule == nullptr ? std::string("none") : rule->meta.ns + "/" + rule->meta.name;
  };
  EXPECT_EQ(nameOf(snapshot.destinationRule("shop", "reviews")), "shop/reviews");
  EXPECT_EQ(nameOf(snapshot.destinationRule("shop", "reviews.shop.svc.cluster.local")),
            "shop/reviews");
  EXPECT_EQ(nameOf(snapshot.destinationRule("shop", "ratings")), "shop/a-shop-wide");
  EXPECT_EQ(nameOf(snapshot.destinationRule("shop", "example.com")), "shop/everything");
  // A rule in another namespace naming the service by its full name.
  EXPECT_EQ(nameOf(snapshot.destinationRule("other", "reviews.shop.svc.cluster.local")),
            "other/reviews");
  EXPECT_EQ(nameOf(snapshot.destinationRule("other", "reviews")), "none");
  EXPECT_EQ(nameOf(snapshot.destinationRule("nowhere", "reviews")), "none");
}

TEST(TrafficSnapshot, DestinationRulesForOneHostMergeAsIstioMergesThem) {
  // Oldest first: "z-base" has no traffic policy, so the next rule's (with its port-level
  // settings) applies; subsets join by name, a repeated name keeping its first definition.
  auto result = load(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: z-base, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: m-policy, namespace: shop, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    portLevelSettings: [{port: {number: 9080}, loadBalancer: {simple: RANDOM}}]
  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a-late, namespace: shop, creationTimestamp: "2026-03-01T00:00:00Z"}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v3, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wide-2, namespace: shop}
spec: {host: "*.shop.svc.cluster.local", subsets: [{name: canary, labels: {track: canary}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wide-1, namespace: shop}
spec: {host: "*.shop.svc.cluster.local", subsets: [{name: stable, labels: {track: stable}}]}
)");
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  const DestinationRule* rule = result.snapshot->destinationRule("shop", "reviews");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->meta.name, "z-base");
  ASSERT_TRUE(rule->traffic_policy);
  ASSERT_TRUE(rule->traffic_policy->load_balancer);
  EXPECT_EQ(rule->traffic_policy->load_balancer->simple, LoadBalancer::kLeastRequest);
  ASSERT_EQ(rule->port_level_settings.size(), 1u);
  std::vector<std::pair<std::string, std::string>> subsets;
  for (const auto& subset : rule->subsets)
    subsets.emplace_back(subset.name, subset.labels.at("version"));
  EXPECT_EQ(subsets, (std::vector<std::pair<std::string, std::string>>{
                         {"v1", "v1"}, {"v2", "v2"}, {"v3", "v3"}}));
  // The dropped definition is reported, naming both rules.
  EXPECT_THAT(result.snapshot->destinationRuleConflicts(),
              ::testing::ElementsAre(
                  "DestinationRule shop/m-policy: subset \"v1\" of reviews.shop.svc.cluster.local "
                  "is already defined by the older shop/z-base, whose definition applies"));

  // Wildcard rules for one host merge too (without creation times, by name).
  const DestinationRule* wide = result.snapshot->destinationRule("shop", "ratings");
  ASSERT_NE(wide, nullptr);
  EXPECT_EQ(wide->meta.name, "wide-1");
  ASSERT_EQ(wide->subsets.size(), 2u);
  EXPECT_EQ(wide->subsets[0].name, "stable");
  EXPECT_EQ(wide->subsets[1].name, "canary");
}

TEST(TrafficSnapshot, ListsHttpRoutesWhoseParentRefNamesTheGateway) {
  auto result = load(R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec:
  gatewayClassName: sluice-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-local, namespace: shop}
spec:
  parentRefs: [{name: waypoint, sectionName: mesh}, {name: waypoint, port: 15008}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-remote, namespace: front}
spec:
  parentRefs: [{name: waypoint, namespace: shop}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-service, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: waypoint}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere, namespace: front}
spec:
  parentRefs: [{name: waypoint}]
)");
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  std::vector<std::string> names;
  for (const HTTPRoute* route : result.snapshot->httpRoutesForGateway("shop", "waypoint"))
    names.push_back(route->meta.ns + "/" + route->meta.name);
  EXPECT_THAT(names, ElementsAre("front/a-remote", "shop/b-local"));
  EXPECT_THAT(result.snapshot->httpRoutesForGateway("shop", "other"), IsEmpty());
  EXPECT_EQ(result.snapshot->httpRoutes("shop").size(), 2u);
  EXPECT_EQ(result.snapshot->httpRoutes("front").size(), 2u);
  EXPECT_THAT(result.snapshot->httpRoutes("none"), IsEmpty());
}

TEST(TrafficSnapshot, GroupsPoliciesAndVirtualServicesByNamespace) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-front, namespace: shop}
spec: {rules: [{from: [{source: {namespaces: [front]}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh, namespace: istio-system}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: front}
spec: {hosts: [web], http: [{route: [{destination: {host: web}}]}]}
)");
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  const Snapshot& snapshot = *result.snapshot;
  auto shop = snapshot.authorizationPolicies("shop");
  ASSERT_EQ(shop.size(), 2u);
  EXPECT_EQ(shop[0].meta.name, "allow-front");
  EXPECT_EQ(shop[1].meta.name, "deny-all");
  EXPECT_EQ(snapshot.authorizationPolicies("istio-system").size(), 1u);
  EXPECT_THAT(snapshot.authorizationPolicies("front"), IsEmpty());
  EXPECT_EQ(snapshot.virtualServices("front").size(), 1u);
  EXPECT_THAT(snapshot.virtualServices("shop"), IsEmpty());
}

TEST(TrafficSnapshot, ConfigDumpShowsTheL7KindsWithTheirDefaults) {
  std::string documents = std::string(kIssueExample) + R"(---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: viewers}
spec:
  rules: [{to: [{operation: {methods: [GET], ports: ["8080"]}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec:
  gatewayClassName: sluice-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: waypoint}]
  rules:
  - backendRefs: [{name: api-server, port: 80}]
    timeouts: {request: 1500ms}
)";
  auto result = load(documents);
  ASSERT_NE(result.snapshot, nullptr) << allReports(result);
  std::string text = result.snapshot->toJson();
  boost::system::error_code error;
  boost::json::value dump = boost::json::parse(text, error);
  ASSERT_FALSE(error) << error.message() << "\n" << text;
  const auto& root = dump.as_object();

  const auto& route = root.at("virtualServices").at(0).at("http").at(0).as_object();
  EXPECT_EQ(route.at("route").at(0).at("destination").at("subset").as_string(), "v1");
  EXPECT_EQ(route.at("route").at(0).at("weight").to_number<int>(), 90);
  EXPECT_EQ(route.at("timeout").as_string(), "5s");
  EXPECT_EQ(route.at("retries").at("perTryTimeout").as_string(), "2s");
  EXPECT_EQ(route.at("retries").at("retryOn").at(0).as_string(), "5xx");

  const auto& rule = root.at("destinationRules").at(0).as_object();
  EXPECT_EQ(rule.at("subsets").at(1).at("labels").at("version").as_string(), "v2");

  const auto& policy = root.at("authorizationPolicies").at(0).as_object();
  EXPECT_EQ(policy.at("action").as_string(), "ALLOW");
  EXPECT_EQ(policy.at("rules").at(0).at("to").at(0).at("operation").at("ports").at(0).as_string(),
            "8080");

  const auto& gateway = root.at("gateways").at(0).as_object();
  EXPECT_EQ(gateway.at("waypoint").as_bool(), true);
  EXPECT_EQ(gateway.at("listeners").at(0).at("allowedRoutes").at("namespaces").at("from"), "Same");

  const auto& http_rule = root.at("httpRoutes").at(0).at("rules").at(0).as_object();
  EXPECT_EQ(http_rule.at("matches").at(0).at("path").at("type").as_string(), "PathPrefix");
  EXPECT_EQ(http_rule.at("matches").at(0).at("path").at("value").as_string(), "/");
  EXPECT_EQ(http_rule.at("backendRefs").at(0).at("weight").to_number<int>(), 1);
  EXPECT_EQ(http_rule.at("timeouts").at("request").as_string(), "1500ms");
}

}  // namespace
}  // namespace sluice::config
