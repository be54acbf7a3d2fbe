// The config compiler: YAML a user writes (loaded by the config loader) in, the waypoint's
// RouteConfig out. Each test reads the routes the way a request would meet them.
#include "waypoint/service_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "core/config/loader.h"
#include "core/config/service_rules.h"

namespace sluice::waypoint {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::tcp;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Namespace shop: service api-server (VIP 198.19.0.10, port 80 -> the pods' port named http,
// 8080) with two v1 pods and one v2 pod.
constexpr std::string_view kShop = R"(apiVersion: v1
kind: Pod
metadata: {name: api-v1-a, namespace: shop, labels: {app: api-server, version: v1}}
spec:
  serviceAccountName: api
  containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 198.18.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: api-v1-b, namespace: shop, labels: {app: api-server, version: v1}}
spec:
  serviceAccountName: api
  containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 198.18.0.12}
---
apiVersion: v1
kind: Pod
metadata: {name: api-v2-a, namespace: shop, labels: {app: api-server, version: v2}}
spec:
  serviceAccountName: api
  containers: [{name: app, ports: [{name: http, containerPort: 9090}]}]
status: {phase: Running, podIP: 198.18.0.21}
---
apiVersion: v1
kind: Service
metadata: {name: api-server, namespace: shop}
spec:
  clusterIP: 198.19.0.10
  selector: {app: api-server}
  ports: [{name: http, port: 80, targetPort: http}]
---
)";

constexpr std::string_view kSubsets = R"(apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: api-server, namespace: shop}
spec:
  host: api-server
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
)";

// The VirtualService of the issue, as Istio documents it.
constexpr std::string_view kSplit = R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
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
)";

const tcp::endpoint kVip{make_address("198.19.0.10"), 80};

std::shared_ptr<const RouteConfig> compile(const std::string& yaml) {
  auto loaded = config::loadString(yaml, "test.yaml");
  if (loaded.snapshot == nullptr) {
    std::string reports;
    for (const auto& report : loaded.documents) reports += "\n  " + config::formatReport(report);
    ADD_FAILURE() << "the configuration did not load:" << reports;
    return std::make_shared<RouteConfig>();
  }
  return compileRoutes(*loaded.snapshot, "cluster.local", "shop", "waypoint");
}

std::string with(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto part : parts) out += part;
  return out;
}

// A routed request: the action the route table picks for it.
struct Request {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
};

Request at(std::string target, std::string method = "GET",
           std::vector<std::pair<std::string, std::string>> headers = {}) {
  return Request{std::move(method), std::move(target), std::move(headers)};
}

const RouteAction* route(const RouteConfig& config, const Request& request) {
  const ServiceRoutes* service = config.find(kVip);
  if (service == nullptr) return nullptr;
  RequestView view;
  view.method = request.method;
  view.scheme = "http";
  view.authority = "api-server";
  view.setTarget(request.target);
  for (const auto& [name, value] : request.headers) view.headers.push_back({name, value});
  auto selection = service->table.select(view, service->port);
  if (!selection) return nullptr;
  return &service->actions.at(selection->route->action);
}

std::vector<std::string> addresses(const Cluster& cluster) {
  std::vector<std::string> out;
  for (const auto& e : cluster.endpoints)
    out.push_back(e.address.address().to_string() + ":" + std::to_string(e.address.port()));
  return out;
}

// The clusters the route for `request` forwards to, in the route's order.
std::vector<const Cluster*> clustersOf(const RouteConfig& config, const Request& request) {
  std::vector<const Cluster*> out;
  if (const RouteAction* action = route(config, request))
    for (const auto& weighted : action->clusters)
      out.push_back(&config.clusters.at(weighted.cluster));
  return out;
}

bool anyProblemMentions(const RouteConfig& config, std::string_view a, std::string_view b) {
  return std::any_of(config.problems.begin(), config.problems.end(), [&](const std::string& p) {
    return p.find(a) != std::string::npos && p.find(b) != std::string::npos;
  });
}

std::string allProblems(const RouteConfig& config) {
  std::string out;
  for (const auto& p : config.problems) out += "\n  " + p;
  return out;
}

TEST(ServiceRoutes, IssueSplitMakesTwoSubsetClustersWeighted90To10) {
  // Given the issue's VirtualService and a DestinationRule with subsets v1/v2 by label,
  auto config = compile(with({kShop, kSubsets, kSplit}));
  // when a request arrives at the service VIP,
  const RouteAction* action = route(*config, at("/"));
  // then it takes the one route, split 90/10 between a v1 and a v2 cluster,
  ASSERT_NE(action, nullptr);
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  EXPECT_EQ(config->find(kVip)->source, "VirtualService shop/api-server");
  ASSERT_EQ(action->clusters.size(), 2u);
  const Cluster& v1 = config->clusters.at(action->clusters[0].cluster);
  const Cluster& v2 = config->clusters.at(action->clusters[1].cluster);
  EXPECT_EQ(action->clusters[0].weight, 90u);
  EXPECT_EQ(action->clusters[1].weight, 10u);
  EXPECT_EQ(v1.name, "outbound|80|v1|api-server.shop.svc.cluster.local");
  EXPECT_EQ(v2.name, "outbound|80|v2|api-server.shop.svc.cluster.local");
  // whose endpoints are the pods' IPs at the named target port, each with its own identity,
  EXPECT_THAT(addresses(v1), ::testing::ElementsAre("198.18.0.11:8080", "198.18.0.12:8080"));
  EXPECT_THAT(addresses(v2), ::testing::ElementsAre("198.18.0.21:9090"));
  EXPECT_EQ(v1.endpoints[0].hbone, tcp::endpoint(make_address("198.18.0.11"), 15008));
  EXPECT_EQ(v1.endpoints[0].identity.str(), "spiffe://cluster.local/ns/shop/sa/api");
  EXPECT_EQ(v1.endpoints[0].workload, "shop/api-v1-a");
  // and retries 3 times on 5xx only, 2 s per try, within 5 s in all.
  EXPECT_EQ(action->retry.attempts, 3u);
  EXPECT_EQ(action->retry.per_try_timeout, 2s);
  EXPECT_TRUE(action->retry.has(RetryOn::k5xx));
  EXPECT_FALSE(action->retry.has(RetryOn::kConnectFailure));
  EXPECT_EQ(action->timeouts.total, 5s);
  EXPECT_EQ(action->timeouts.per_try, 2s);
}

TEST(ServiceRoutes, KnowsWhichServicesUseThisWaypoint) {
  // Given the service labelled for waypoint shop/waypoint and a second one without a label,
  std::string labelled(kShop);
  labelled.replace(labelled.find("metadata: {name: api-server, namespace: shop}"),
                   std::string_view("metadata: {name: api-server, namespace: shop}").size(),
                   "metadata: {name: api-server, namespace: shop, labels: "
                   "{sluice.dev/use-waypoint: waypoint}}");
  constexpr std::string_view kOther = R"(apiVersion: v1
kind: Service
metadata: {name: other, namespace: shop}
spec:
  clusterIP: 198.19.0.99
  selector: {app: api-server}
  ports: [{name: http, port: 80, targetPort: http}]
---
)";
  // when compiled for waypoint shop/waypoint and for another waypoint,
  auto config = compile(with({labelled, kOther}));
  auto loaded = config::loadString(with({labelled, kOther}), "test.yaml");
  ASSERT_NE(loaded.snapshot, nullptr);
  auto elsewhere = compileRoutes(*loaded.snapshot, "cluster.local", "shop", "another");
  // then only the labelled service is bound, and only to the waypoint it names.
  EXPECT_TRUE(config->find(kVip)->bound);
  EXPECT_FALSE(config->find(tcp::endpoint(make_address("198.19.0.99"), 80))->bound);
  EXPECT_FALSE(elsewhere->find(kVip)->bound);
}

TEST(ServiceRoutes, HbonePortIsConfigurableForTests) {
  auto loaded = config::loadString(with({kShop}), "test.yaml");
  ASSERT_NE(loaded.snapshot, nullptr);
  auto config = compileRoutes(*loaded.snapshot, "cluster.local", "shop", "waypoint", 25008);
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(config->clusters.at(action->clusters.at(0).cluster).endpoints.at(0).hbone.port(),
            25008);
}

TEST(ServiceRoutes, OnlyEnrolledPodsAreReachedOverHbone) {
  // Given namespace shop in ambient mode, with pod api-v1-b opted out,
  std::string shop(kShop);
  const std::string_view pod = "metadata: {name: api-v1-b, namespace: shop, labels: {";
  shop.replace(shop.find(pod), pod.size(), std::string(pod) + "sluice.dev/dataplane-mode: none, ");
  constexpr std::string_view kAmbient = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
)";
  auto config = compile(with({kAmbient, shop}));
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  // then the enrolled pods take HBONE and the opted-out one plain TCP,
  std::map<std::string, bool> meshed;
  for (const auto& endpoint : config->clusters.at(action->clusters.at(0).cluster).endpoints)
    meshed[endpoint.workload] = endpoint.meshed;
  EXPECT_THAT(meshed, ::testing::ElementsAre(::testing::Pair("shop/api-v1-a", true),
                                             ::testing::Pair("shop/api-v1-b", false),
                                             ::testing::Pair("shop/api-v2-a", true)));
  // and without the namespace label nothing in it is in the mesh.
  config = compile(with({kShop}));
  for (const auto& endpoint :
       config->clusters.at(route(*config, at("/"))->clusters.at(0).cluster).endpoints)
    EXPECT_FALSE(endpoint.meshed) << endpoint.workload;
}

TEST(ServiceRoutes, WithoutVirtualServiceEveryEndpointGetsIstioDefaultRetries) {
  auto config = compile(with({kShop}));
  const RouteAction* action = route(*config, at("/anything"));
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(config->find(kVip)->source, "default");
  ASSERT_EQ(action->clusters.size(), 1u);
  const Cluster& all = config->clusters.at(action->clusters[0].cluster);
  EXPECT_EQ(all.name, "outbound|80||api-server.shop.svc.cluster.local");
  EXPECT_THAT(addresses(all),
              ::testing::ElementsAre("198.18.0.11:8080", "198.18.0.12:8080", "198.18.0.21:9090"));
  const RetryPolicy istio = RetryPolicy::istioDefault();
  EXPECT_EQ(action->retry.attempts, istio.attempts);
  EXPECT_EQ(action->retry.retry_on, istio.retry_on);
  EXPECT_EQ(action->retry.retriable_status_codes, istio.retriable_status_codes);
  EXPECT_EQ(action->timeouts.total, 0ms);
}

TEST(ServiceRoutes, AttemptsZeroDisablesRetries) {
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server.shop.svc.cluster.local]
  http:
    - route: [{destination: {host: api-server}}]
      retries: {attempts: 0}
)"}));
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(action->retry.attempts, 0u);
  EXPECT_FALSE(action->retry.enabled());
}

TEST(ServiceRoutes, FaultDelayAndAbortKeepTheirPercentages) {
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - match: [{uri: {prefix: /slow}}]
      fault: {delay: {fixedDelay: 150ms, percentage: {value: 25.5}}}
      route: [{destination: {host: api-server}}]
    - fault: {abort: {httpStatus: 418, percentage: {value: 10}}}
      route: [{destination: {host: api-server}}]
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  const RouteAction* slow = route(*config, at("/slow/x"));
  ASSERT_NE(slow, nullptr);
  ASSERT_TRUE(slow->fault);
  ASSERT_TRUE(slow->fault->delay());
  EXPECT_EQ(slow->fault->delay()->fixed_delay, 150ms);
  EXPECT_DOUBLE_EQ(slow->fault->delay()->percentage, 25.5);
  EXPECT_FALSE(slow->fault->abort());
  const RouteAction* other = route(*config, at("/"));
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->fault);
  ASSERT_TRUE(other->fault->abort());
  EXPECT_EQ(other->fault->abort()->http_status, 418);
  EXPECT_DOUBLE_EQ(other->fault->abort()->percentage, 10);
}

// Routes named after what they match, so a test can see which one a request took.
constexpr std::string_view kMatches = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - name: exact-login
      match: [{uri: {exact: /login}}]
      route: [{destination: {host: api-server}}]
    - name: regex-item
      match: [{uri: {regex: "/items/[0-9]+"}}]
      route: [{destination: {host: api-server}}]
    - name: canary-header
      match: [{headers: {x-canary: {exact: "true"}}}]
      route: [{destination: {host: api-server}}]
    - name: post-only
      match: [{method: {exact: POST}}]
      route: [{destination: {host: api-server}}]
    - name: api-prefix
      match: [{uri: {prefix: /api}}]
      route: [{destination: {host: api-server}}]
---
)";

TEST(ServiceRoutes, MatchesOnUriExactRegexPrefixHeadersAndMethodInOrder) {
  auto config = compile(with({kShop, kMatches}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  auto name = [&](Request r) {
    const RouteAction* a = route(*config, r);
    return a == nullptr ? std::string("<404>") : a->name;
  };
  EXPECT_EQ(name(at("/login")), "exact-login");
  EXPECT_EQ(name(at("/login/x")), "<404>");
  EXPECT_EQ(name(at("/items/42")), "regex-item");
  EXPECT_EQ(name(at("/items/42x")), "<404>");  // RE2 full match
  EXPECT_EQ(name(at("/x", "GET", {{"X-Canary", "true"}})), "canary-header");
  EXPECT_EQ(name(at("/x", "GET", {{"x-canary", "false"}})), "<404>");
  EXPECT_EQ(name(at("/api/v1", "POST")), "post-only");  // first match wins
  EXPECT_EQ(name(at("/api/v1")), "api-prefix");
  EXPECT_EQ(name(at("/apix")), "api-prefix");  // Istio prefix is a string prefix
}

TEST(ServiceRoutes, RegexRe2RejectsIsAProblemAndTheOtherRoutesStillCompile) {
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - name: broken
      match: [{uri: {regex: "/(unclosed"}}]
      route: [{destination: {host: api-server}}]
    - name: fine
      route: [{destination: {host: api-server}}]
)"}));
  ASSERT_EQ(config->problems.size(), 1u) << allProblems(*config);
  EXPECT_THAT(config->problems[0], HasSubstr("VirtualService shop/api-server"));
  EXPECT_THAT(config->problems[0], HasSubstr("broken"));
  const RouteAction* action = route(*config, at("/(unclosed"));
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(action->name, "fine");
  EXPECT_EQ(config->find(kVip)->table.routes().size(), 1u);
}

TEST(ServiceRoutes, UnknownSubsetIsAProblemAndAnEmptyCluster) {
  auto config = compile(with({kShop, kSubsets, R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - route: [{destination: {host: api-server, subset: v3}}]
)"}));
  EXPECT_TRUE(anyProblemMentions(*config, "VirtualService shop/api-server", "\"v3\""))
      << allProblems(*config);
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  ASSERT_EQ(action->clusters.size(), 1u);
  const Cluster& v3 = config->clusters.at(action->clusters[0].cluster);
  EXPECT_EQ(v3.subset, "v3");
  EXPECT_TRUE(v3.endpoints.empty());  // the proxy answers 503 UH, as Istio does
}

TEST(ServiceRoutes, UnknownDestinationHostIsAProblemNamingTheRoute) {
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - name: gone
      route: [{destination: {host: nowhere}}]
)"}));
  EXPECT_TRUE(anyProblemMentions(*config, "gone", "nowhere")) << allProblems(*config);
  // A VirtualService with no usable route leaves the service on its default route.
  EXPECT_EQ(config->find(kVip)->source, "default");
  EXPECT_NE(route(*config, at("/")), nullptr);
}

// A VirtualService `name` for `hosts` whose one route, named after it, goes to api-server.
std::string virtualService(std::string_view name, std::string_view hosts,
                           std::string_view extra_metadata = "", std::string_view ns = "shop",
                           std::string_view extra_spec = "") {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " +
         std::string(name) + ", namespace: " + std::string(ns) + std::string(extra_metadata) +
         "}\nspec:\n  hosts: " + std::string(hosts) + "\n" + std::string(extra_spec) +
         "  http:\n    - name: " + std::string(name) +
         "\n      route: [{destination: {host: api-server.shop.svc.cluster.local}}]\n---\n";
}

std::string routedBy(const RouteConfig& config) {
  const RouteAction* action = route(config, at("/"));
  return action == nullptr ? "nothing" : action->name;
}

TEST(ServiceRoutes, WildcardVirtualServiceRoutesTheServicesItCoversAndAnExactHostWins) {
  auto wildcard_only =
      compile(with({kShop, virtualService("shop-wide", "[\"*.shop.svc.cluster.local\"]")}));
  EXPECT_EQ(wildcard_only->find(kVip)->source, "VirtualService shop/shop-wide");
  EXPECT_EQ(routedBy(*wildcard_only), "shop-wide");

  // "*" covers every host, a longer suffix covers fewer and wins, an exact name wins over both.
  auto all = compile(with({kShop, virtualService("everything", "[\"*\"]"),
                           virtualService("shop-wide", "[\"*.shop.svc.cluster.local\"]"),
                           virtualService("exact", "[api-server]")}));
  EXPECT_EQ(routedBy(*all), "exact");
  EXPECT_TRUE(all->problems.empty()) << allProblems(*all);
  auto wildcards = compile(with({kShop, virtualService("everything", "[\"*\"]"),
                                 virtualService("shop-wide", "[\"*.shop.svc.cluster.local\"]")}));
  EXPECT_EQ(routedBy(*wildcards), "shop-wide");

  // A wildcard is not a short name: "*.shop" covers no cluster.local host.
  auto short_wildcard = compile(with({kShop, virtualService("short", "[\"*.shop\"]")}));
  EXPECT_EQ(short_wildcard->find(kVip)->source, "default");
}

TEST(ServiceRoutes, OfTwoVirtualServicesForOneHostTheOldestRoutesAndTheOtherIsAProblem) {
  // The newer one sorts first by name: age, not name, decides (Istio's IST0109 conflict).
  auto config = compile(with(
      {kShop,
       virtualService("a-newer", "[api-server]", ", creationTimestamp: \"2026-12-02T10:00:00Z\""),
       virtualService("b-older", "[api-server]",
                      ", creationTimestamp: \"2026-01-05T08:00:00Z\"")}));
  EXPECT_EQ(routedBy(*config), "b-older");
  EXPECT_TRUE(anyProblemMentions(*config, "VirtualService shop/b-older", "ignored: shop/a-newer"))
      << allProblems(*config);
  EXPECT_EQ(config->problems.size(), 1u) << allProblems(*config);  // once, not once per port
}

TEST(ServiceRoutes, VirtualServiceExportedToItsOwnNamespaceOnlyIsNotSeenFromAnother) {
  // The waypoint is in namespace shop; these VirtualServices live in namespace other.
  auto private_one =
      compile(with({kShop, virtualService("private", "[api-server.shop.svc.cluster.local]", "",
                                          "other", "  exportTo: [\".\"]\n")}));
  EXPECT_EQ(private_one->find(kVip)->source, "default");
  auto exported =
      compile(with({kShop, virtualService("exported", "[api-server.shop.svc.cluster.local]", "",
                                          "other", "  exportTo: [\".\", shop]\n")}));
  EXPECT_EQ(routedBy(*exported), "exported");
}

TEST(ServiceRoutes, DestinationRulesForOneHostMergeOldestPolicyFirstAndEverySubset) {
  // Two teams own a subset each; the older rule's traffic policy applies, and a subset name
  // taken already keeps its first definition (Istio's DestinationRule merging).
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a-team-v2, namespace: shop, creationTimestamp: "2026-06-01T00:00:00Z"}
spec:
  host: api-server.shop.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
    - {name: v2, labels: {version: v2}}
    - {name: v1, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b-team-v1, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  host: api-server
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets:
    - {name: v1, labels: {version: v1}}
---
)",
                              kSplit}));
  // The definition that lost is in the waypoint's problems (config_dump).
  EXPECT_THAT(config->problems,
              ::testing::ElementsAre("DestinationRule shop/a-team-v2: subset \"v1\" of "
                                     "api-server.shop.svc.cluster.local is already defined by "
                                     "the older shop/b-team-v1, whose definition applies"));
  auto clusters = clustersOf(*config, at("/"));
  ASSERT_EQ(clusters.size(), 2u);
  const Cluster& v1 = *clusters[0];
  const Cluster& v2 = *clusters[1];
  EXPECT_THAT(addresses(v1), ::testing::ElementsAre("198.18.0.11:8080", "198.18.0.12:8080"));
  EXPECT_THAT(addresses(v2), ::testing::ElementsAre("198.18.0.21:9090"));
  EXPECT_EQ(v1.lb, LbPolicy::kLeastRequest);
  EXPECT_EQ(v2.lb, LbPolicy::kLeastRequest);
}

// ---- Gateway API (GAMMA) ---------------------------------------------------------------

constexpr std::string_view kBackends = R"(apiVersion: v1
kind: Pod
metadata: {name: api-v1-pod, namespace: shop, labels: {app: api-v1}}
spec: {serviceAccountName: api-v1}
status: {phase: Running, podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-v2-pod, namespace: shop, labels: {app: api-v2}}
spec: {serviceAccountName: api-v2}
status: {phase: Running, podIP: 198.18.2.1}
---
apiVersion: v1
kind: Service
metadata: {name: api-v1, namespace: shop}
spec: {clusterIP: 198.19.1.1, selector: {app: api-v1}, ports: [{port: 8080, targetPort: 8081}]}
---
apiVersion: v1
kind: Service
metadata: {name: api-v2, namespace: shop}
spec: {clusterIP: 198.19.2.1, selector: {app: api-v2}, ports: [{port: 8080}]}
---
)";

TEST(ServiceRoutes, HttpRouteOnTheServiceSplitsByWeightWithTimeoutsAndHeaderFilters) {
  auto config = compile(with({kShop, kBackends, R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api-server, port: 80}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /api}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-a, value: b}], add: [{name: x-b, value: c}], remove: [x-c]}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {set: [{name: x-served-by, value: gamma}]}
      backendRefs:
        - {name: api-v1, port: 8080, weight: 90}
        - {name: api-v2, port: 8080, weight: 10}
      timeouts: {request: 10s, backendRequest: 2s}
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  EXPECT_EQ(config->find(kVip)->source, "HTTPRoute shop/api");
  const RouteAction* action = route(*config, at("/api/users"));
  ASSERT_NE(action, nullptr);
  ASSERT_EQ(action->clusters.size(), 2u);
  EXPECT_EQ(action->clusters[0].weight, 90u);
  EXPECT_EQ(action->clusters[1].weight, 10u);
  const Cluster& v1 = config->clusters.at(action->clusters[0].cluster);
  EXPECT_EQ(v1.name, "outbound|8080||api-v1.shop.svc.cluster.local");
  EXPECT_THAT(addresses(v1), ::testing::ElementsAre("198.18.1.1:8081"));
  EXPECT_THAT(addresses(config->clusters.at(action->clusters[1].cluster)),
              ::testing::ElementsAre("198.18.2.1:8080"));
  EXPECT_EQ(action->timeouts.total, 10s);
  EXPECT_EQ(action->timeouts.per_try, 2s);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(action->request_headers.set, (Pairs{{"x-a", "b"}}));
  EXPECT_EQ(action->request_headers.add, (Pairs{{"x-b", "c"}}));
  EXPECT_THAT(action->request_headers.remove, ::testing::ElementsAre("x-c"));
  EXPECT_EQ(action->response_headers.set, (Pairs{{"x-served-by", "gamma"}}));
  // PathPrefix matches whole segments: /apix takes no route, and there is no other rule.
  EXPECT_EQ(route(*config, at("/apix")), nullptr);
}

TEST(ServiceRoutes, HttpRoutePrecedenceExactBeforeLongestPrefixBeforeShorter) {
  auto config = compile(with({kShop, kBackends, R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api-server}]
  rules:
    - name: root
      backendRefs: [{name: api-v1, port: 8080}]
    - name: api
      matches: [{path: {type: PathPrefix, value: /api}}]
      backendRefs: [{name: api-v1, port: 8080}]
    - name: api-v2
      matches: [{path: {type: PathPrefix, value: /api/v2}}]
      backendRefs: [{name: api-v2, port: 8080}]
    - name: exact
      matches: [{path: {type: Exact, value: /api/v2/login}}]
      backendRefs: [{name: api-v2, port: 8080}]
    - name: with-header
      matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-user, value: jason}]}]
      backendRefs: [{name: api-v2, port: 8080}]
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  auto name = [&](Request r) {
    const RouteAction* a = route(*config, r);
    return a == nullptr ? std::string("<404>") : a->name;
  };
  EXPECT_EQ(name(at("/")), "root");
  EXPECT_EQ(name(at("/api/v1")), "api");
  EXPECT_EQ(name(at("/api/v2/x")), "api-v2");
  EXPECT_EQ(name(at("/api/v2/login")), "exact");
  EXPECT_EQ(name(at("/api/v1", "GET", {{"x-user", "jason"}})), "with-header");
}

TEST(ServiceRoutes, HttpRouteUrlRewriteReplacePrefixMatchKeepsTheRestOfThePath) {
  auto config = compile(with({kShop, kBackends, R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api-server}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /old}}]
      filters:
        - type: URLRewrite
          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
      backendRefs: [{name: api-v1, port: 8080}]
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  const RouteAction* action = route(*config, at("/old/page"));
  ASSERT_NE(action, nullptr);
  // The proxy replaces prefix_matched with rewrite_prefix: /old/page becomes /new/page.
  EXPECT_EQ(action->rewrite_prefix, "/new");
  EXPECT_EQ(action->prefix_matched, "/old");
}

TEST(ServiceRoutes, HttpRouteWithUnknownBackendAnswers500AndSaysWhy) {
  auto config = compile(with({kShop, R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: api-server}]
  rules:
    - backendRefs: [{name: missing, port: 8080}]
)"}));
  EXPECT_TRUE(anyProblemMentions(*config, "HTTPRoute shop/api", "shop/missing"))
      << allProblems(*config);
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  ASSERT_TRUE(action->direct_response);
  EXPECT_EQ(action->direct_response->status, 500);
}

// ---- AuthorizationPolicy ---------------------------------------------------------------

TEST(ServiceRoutes, AuthorizationPoliciesAttachByTargetRefToServiceOrWaypoint) {
  auto config = compile(with({kShop, R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: api-server}]
  action: DENY
  rules: [{to: [{operation: {paths: [/admin*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: viewers, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: ALLOW
  rules: [{from: [{source: {namespaces: [shop]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: other-waypoint}]
  action: DENY
  rules: [{}]
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  const ServiceRoutes* service = config->find(kVip);
  ASSERT_NE(service, nullptr);
  std::vector<std::string> names;
  for (const auto& p : service->authorization) names.push_back(p.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("shop/deny-admin", "shop/viewers"));

  // The compiled policies decide as Istio would.
  RequestView admin;
  admin.method = "GET";
  admin.setTarget("/admin/users");
  RequestView page;
  page.method = "GET";
  page.setTarget("/page");
  const std::string principal = "cluster.local/ns/shop/sa/client";
  Peer from_shop{principal, "shop", "198.18.0.5"};
  Peer from_other{"cluster.local/ns/other/sa/client", "other", "198.18.0.6"};
  EXPECT_FALSE(authorize(service->authorization, from_shop, admin, 80).allowed);
  EXPECT_TRUE(authorize(service->authorization, from_shop, page, 80).allowed);
  EXPECT_FALSE(authorize(service->authorization, from_other, page, 80).allowed);
}

// Who may call, as the compiled policies of service api-server decide.
bool allowed(const RouteConfig& config, std::string_view sa, std::string_view path) {
  const ServiceRoutes* service = config.find(kVip);
  if (service == nullptr) return false;
  RequestView request;
  request.method = "GET";
  request.setTarget(path);
  const std::string principal = "cluster.local/ns/shop/sa/" + std::string(sa);
  return authorize(service->authorization, Peer{principal, "shop", "198.18.0.5"}, request, 80)
      .allowed;
}

constexpr std::string_view kPolicyHead = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: api-server}]
)";

TEST(ServiceRoutes, AllowBySourceServiceAccountAdmitsOnlyThatAccount) {
  auto config = compile(with({kShop, kPolicyHead, R"(  action: ALLOW
  rules: [{from: [{source: {serviceAccounts: [shop/client, other]}}]}]
)"}));
  EXPECT_TRUE(allowed(*config, "client", "/"));
  EXPECT_TRUE(allowed(*config, "other", "/"));  // a bare name is in the policy's namespace
  EXPECT_FALSE(allowed(*config, "intruder", "/"));
}

TEST(ServiceRoutes, AllowOnRequestPrincipalsTheWaypointCannotCheckAdmitsNobody) {
  // Given the usual "require a JWT" policy, and a waypoint that does not validate JWTs,
  auto config = compile(with({kShop, kPolicyHead, R"(  action: ALLOW
  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
)"}));
  // then no request is admitted (fail closed), and the operator is told why.
  EXPECT_FALSE(allowed(*config, "client", "/"));
  EXPECT_TRUE(anyProblemMentions(*config, "AuthorizationPolicy shop/p", "requestPrincipals"))
      << allProblems(*config);
}

TEST(ServiceRoutes, DenyOnFieldsTheWaypointCannotCheckStillDenies) {
  auto config = compile(with({kShop, kPolicyHead, R"(  action: DENY
  rules:
    - from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]
      to: [{operation: {paths: [/admin*]}}]
)"}));
  EXPECT_FALSE(allowed(*config, "client", "/admin/users"));
  EXPECT_TRUE(allowed(*config, "client", "/page"));
}

// ---- DestinationRule traffic policy ----------------------------------------------------

TEST(ServiceRoutes, DestinationRulePolicyReachesTheClusterWithSubsetOverrides) {
  auto config = compile(with({kShop, R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-server, namespace: shop}
spec:
  host: api-server
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool: {http: {http1MaxPendingRequests: 7, http2MaxRequests: 100, maxRetries: 3}}
    outlierDetection: {consecutive5xxErrors: 2, baseEjectionTime: 45s, maxEjectionPercent: 50}
  subsets:
    - {name: v1, labels: {version: v1}}
    - name: v2
      labels: {version: v2}
      trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-server, namespace: shop}
spec:
  hosts: [api-server]
  http:
    - route:
        - {destination: {host: api-server, subset: v1}, weight: 50}
        - {destination: {host: api-server, subset: v2}, weight: 50}
)"}));
  EXPECT_TRUE(config->problems.empty()) << allProblems(*config);
  auto clusters = clustersOf(*config, at("/"));
  ASSERT_EQ(clusters.size(), 2u);
  const Cluster& v1 = *clusters[0];
  const Cluster& v2 = *clusters[1];
  EXPECT_EQ(v1.lb, LbPolicy::kLeastRequest);
  EXPECT_FALSE(v1.hash);
  EXPECT_EQ(v1.limits.max_pending_requests, 7u);
  EXPECT_EQ(v1.limits.max_requests, 100u);
  EXPECT_EQ(v1.limits.max_retries, 3u);
  ASSERT_TRUE(v1.outlier);
  EXPECT_EQ(v1.outlier->consecutive_5xx, 2u);
  EXPECT_EQ(v1.outlier->base_ejection_time, 45s);
  EXPECT_EQ(v1.outlier->max_ejection_percent, 50u);
  // The subset's loadBalancer replaces the rule's; the other fields stay.
  EXPECT_EQ(v2.lb, LbPolicy::kRingHash);
  ASSERT_TRUE(v2.hash);
  EXPECT_EQ(v2.hash->kind, HashKeySource::Kind::kHeader);
  EXPECT_EQ(v2.hash->name, "x-user");
  EXPECT_EQ(v2.limits.max_pending_requests, 7u);
  ASSERT_TRUE(v2.outlier);
}

// A DestinationRule `name` in `ns` for `host` with `lb` as its simple load balancer.
std::string destinationRule(std::string_view name, std::string_view ns, std::string_view host,
                            std::string_view lb, std::string_view extra_spec = "") {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " +
         std::string(name) + ", namespace: " + std::string(ns) + "}\nspec:\n  host: \"" +
         std::string(host) + "\"\n  trafficPolicy: {loadBalancer: {simple: " + std::string(lb) +
         "}}\n" + std::string(extra_spec) + "---\n";
}

LbPolicy defaultClusterLb(const RouteConfig& config) {
  auto clusters = clustersOf(config, at("/"));
  return clusters.empty() ? LbPolicy::kRoundRobin : clusters[0]->lb;
}

TEST(ServiceRoutes, DestinationRuleIsLookedUpInTheWaypointsThenTheServicesThenTheRootNamespace) {
  // A mesh-wide default in the root namespace applies where nothing nearer does.
  const std::string mesh_default =
      destinationRule("mesh-default", "istio-system", "*.local", "LEAST_REQUEST");
  EXPECT_EQ(defaultClusterLb(*compile(with({kShop, mesh_default}))), LbPolicy::kLeastRequest);
  // The service's namespace (here also the waypoint's) comes before the root namespace.
  EXPECT_EQ(defaultClusterLb(*compile(with(
                {kShop, mesh_default, destinationRule("api", "shop", "api-server", "RANDOM")}))),
            LbPolicy::kRandom);
  // A rule in a namespace off the path, or not exported to the waypoint's, is not used.
  EXPECT_EQ(defaultClusterLb(*compile(
                with({kShop, destinationRule("elsewhere", "other",
                                             "api-server.shop.svc.cluster.local", "RANDOM")}))),
            LbPolicy::kRoundRobin);
  EXPECT_EQ(
      defaultClusterLb(*compile(with({kShop, destinationRule("private", "istio-system", "*.local",
                                                             "RANDOM", "  exportTo: [\".\"]\n")}))),
      LbPolicy::kRoundRobin);
}

TEST(ServiceRoutes, NoDestinationRuleMeansRoundRobinUnlimitedAndNoOutlierDetection) {
  auto config = compile(with({kShop}));
  const RouteAction* action = route(*config, at("/"));
  ASSERT_NE(action, nullptr);
  const Cluster& all = config->clusters.at(action->clusters.at(0).cluster);
  EXPECT_EQ(all.lb, LbPolicy::kRoundRobin);
  EXPECT_FALSE(all.outlier);
  EXPECT_EQ(all.limits.max_requests, CircuitBreakerLimits::kUnlimited);
}

// The rules ztunnel applies too (core/config/service_rules, core/telemetry/workload_labels):
// the two daemons resolve and label the same pod alike.
TEST(ServiceRoutes, EndpointsFollowTheRulesZtunnelResolvesAndLabelsBy) {
  // Given a dual-stack Deployment pod behind a dual-stack service whose port sets no targetPort
  constexpr std::string_view kDualStack = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-5d8f7c9b4-x2x7q
  namespace: shop
  labels: {app.kubernetes.io/name: reviews, version: v1, pod-template-hash: 5d8f7c9b4}
spec: {serviceAccountName: reviews}
status:
  phase: Running
  podIPs: [{ip: 198.18.0.31}, {ip: "fd00:5::31"}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIPs: [198.19.0.31, "fd00:5::1:31"]
  selector: {version: v1}
  ports: [{name: http, port: 9080}]
---
)";
  auto loaded = config::loadString(kDualStack, "dual.yaml");
  ASSERT_TRUE(loaded.snapshot);
  auto config = compileRoutes(*loaded.snapshot, "cluster.local", "shop", "waypoint");
  const config::Pod& pod = *loaded.snapshot->pod("shop", "reviews-v1-5d8f7c9b4-x2x7q");

  for (const char* vip : {"198.19.0.31", "fd00:5::1:31"}) {
    // When a request for either VIP picks its endpoint
    const ServiceRoutes* routes = config->find(tcp::endpoint(make_address(vip), 9080));
    ASSERT_NE(routes, nullptr) << vip;
    const RouteAction& action = routes->actions.at(0);
    const Cluster& cluster = config->clusters.at(action.clusters.at(0).cluster);
    ASSERT_EQ(cluster.endpoints.size(), 1u) << vip;
    const Endpoint& endpoint = cluster.endpoints[0];
    // Then it is the pod's address of the VIP's family, at the service port (targetPort unset)
    EXPECT_EQ(endpoint.address.address(), config::endpointAddress(pod, make_address(vip)));
    EXPECT_EQ(endpoint.address.port(), 9080) << vip;
    // And its metric labels are ztunnel's: the Deployment, not the pod; app.kubernetes.io/name
    EXPECT_EQ(endpoint.labels,
              telemetry::workloadLabels(pod, "spiffe://cluster.local/ns/shop/sa/reviews"));
    EXPECT_EQ(endpoint.labels.workload, "reviews-v1");
    EXPECT_EQ(endpoint.labels.canonical_service, "reviews");
    EXPECT_EQ(endpoint.labels.canonical_revision, "v1");
  }
}

}  // namespace
}  // namespace sluice::waypoint
