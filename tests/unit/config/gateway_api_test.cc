// Gateway and HTTPRoute: the specification's defaults, versions, rejections.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using testing::expectRejected;
using ::testing::IsEmpty;
using testing::load;
using testing::loadAfter;
using testing::onlyReport;
using ::testing::Pair;

const HTTPRoute& onlyRoute(const LoadResult& result) {
  return testing::onlyObject(result, &Snapshot::httpRoutes);
}

constexpr std::string_view kWaypoint = R"(kind: Gateway
metadata:
  name: waypoint
  namespace: shop
  labels: {istio.io/waypoint-for: service}
spec:
  gatewayClassName: sluice-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
    allowedRoutes:
      namespaces: {from: All}
)";

TEST(GatewayDecoding, ReadsAWaypointInEitherVersion) {
  for (const char* version : {"v1", "v1beta1"}) {
    auto result = load(std::string("apiVersion: gateway.networking.k8s.io/") + version + "\n" +
                       std::string(kWaypoint));
    ASSERT_NE(result.snapshot, nullptr) << formatReport(onlyReport(result));
    const Gateway* gateway = result.snapshot->waypoint("shop", "waypoint");
    ASSERT_NE(gateway, nullptr) << version;
    EXPECT_EQ(gateway->gateway_class_name, kWaypointGatewayClass);
    ASSERT_EQ(gateway->listeners.size(), 1u);
    EXPECT_EQ(gateway->listeners[0].name, "mesh");
    EXPECT_EQ(gateway->listeners[0].port, 15008);
    EXPECT_EQ(gateway->listeners[0].protocol, "HBONE");
    EXPECT_EQ(gateway->listeners[0].allowed_namespaces_from, "All");
  }
}

TEST(GatewayDecoding, KeepsGatewaysOfOtherClassesButDoesNotCallThemWaypoints) {
  auto result = load(R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}]
)");
  ASSERT_NE(result.snapshot, nullptr);
  ASSERT_NE(result.snapshot->gateway("shop", "ingress"), nullptr);
  EXPECT_EQ(result.snapshot->gateway("shop", "ingress")->listeners[0].allowed_namespaces_from,
            "Same");
  EXPECT_EQ(result.snapshot->waypoint("shop", "ingress"), nullptr);
}

TEST(HttpRouteDecoding, FillsInTheSpecificationsDefaults) {
  auto result = load(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{name: waypoint}]
  rules:
  - backendRefs: [{name: reviews, port: 9080}]
  - matches: [{headers: [{name: x-user, value: jason}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
)");
  const HTTPRoute& route = onlyRoute(result);
  ASSERT_EQ(route.parent_refs.size(), 1u);
  EXPECT_EQ(route.parent_refs[0].group, kGatewayApiGroup);
  EXPECT_EQ(route.parent_refs[0].kind, "Gateway");
  EXPECT_EQ(route.parent_refs[0].ns, "");
  ASSERT_EQ(route.rules.size(), 2u);
  // A rule without matches matches every path.
  ASSERT_EQ(route.rules[0].matches.size(), 1u);
  EXPECT_EQ(route.rules[0].matches[0].path_type, GatewayMatchType::kPathPrefix);
  EXPECT_EQ(route.rules[0].matches[0].path, "/");
  ASSERT_EQ(route.rules[0].backend_refs.size(), 1u);
  EXPECT_EQ(route.rules[0].backend_refs[0].weight, 1u);
  EXPECT_EQ(route.rules[0].backend_refs[0].ref.kind, "Service");
  EXPECT_EQ(route.rules[0].backend_refs[0].ref.port, 9080);
  // A match without a path matches every path too; a header match defaults to Exact.
  const HttpRouteMatch& match = route.rules[1].matches.at(0);
  EXPECT_EQ(match.path_type, GatewayMatchType::kPathPrefix);
  EXPECT_EQ(match.path, "/");
  ASSERT_EQ(match.headers.size(), 1u);
  EXPECT_EQ(match.headers[0].type, GatewayMatchType::kExact);
  EXPECT_EQ(match.headers[0].name, "x-user");
  EXPECT_EQ(match.headers[0].value, "jason");
  EXPECT_EQ(route.rules[0].request_timeout, std::nullopt);
}

TEST(HttpRouteDecoding, RouteWithoutRulesGetsTheDefaultRule) {
  auto result = load(R"(apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: empty}
spec:
  parentRefs: [{name: waypoint}]
)");
  const HTTPRoute& route = onlyRoute(result);
  ASSERT_EQ(route.rules.size(), 1u);
  ASSERT_EQ(route.rules[0].matches.size(), 1u);
  EXPECT_EQ(route.rules[0].matches[0].path, "/");
  EXPECT_THAT(route.rules[0].backend_refs, IsEmpty());
}

TEST(HttpRouteDecoding, ReadsMatchesFiltersWeightsAndTimeouts) {
  auto result = load(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs:
  - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint, namespace: mesh}
  hostnames: [reviews.example.com]
  rules:
  - name: api
    matches:
    - path: {type: Exact, value: /api}
      method: POST
      queryParams: [{type: RegularExpression, name: debug, value: "[01]"}]
    - path: {type: RegularExpression, value: "/v[0-9]+/.*"}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: api}]
        add: [{name: x-mesh, value: sluice}]
        remove: [x-debug]
    - type: URLRewrite
      urlRewrite:
        hostname: reviews.internal
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}
    - type: RequestMirror
      requestMirror:
        backendRef: {name: shadow, port: 80}
        fraction: {numerator: 1, denominator: 4}
    backendRefs:
    - {name: reviews-v1, port: 9080, weight: 90}
    - name: reviews-v2
      port: 9080
      weight: 10
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier: {set: [{name: x-version, value: v2}]}
    timeouts: {request: 5s, backendRequest: 2s}
  - matches: [{path: {value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301}
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Filter, name: audit}
)");
  const HTTPRoute& route = onlyRoute(result);
  EXPECT_EQ(route.parent_refs.at(0).ns, "mesh");
  EXPECT_THAT(route.hostnames, ElementsAre("reviews.example.com"));
  ASSERT_EQ(route.rules.size(), 2u);
  const HttpRouteRule& rule = route.rules[0];
  EXPECT_EQ(rule.name, "api");
  ASSERT_EQ(rule.matches.size(), 2u);
  EXPECT_EQ(rule.matches[0].path_type, GatewayMatchType::kExact);
  EXPECT_EQ(rule.matches[0].path, "/api");
  EXPECT_EQ(rule.matches[0].method, "POST");
  EXPECT_EQ(rule.matches[0].query_params.at(0).type, GatewayMatchType::kRegularExpression);
  EXPECT_EQ(rule.matches[1].path_type, GatewayMatchType::kRegularExpression);

  ASSERT_EQ(rule.filters.size(), 3u);
  EXPECT_EQ(rule.filters[0].type, HttpRouteFilter::Type::kRequestHeaderModifier);
  EXPECT_THAT(rule.filters[0].headers.set, ElementsAre(Pair("x-route", "api")));
  EXPECT_THAT(rule.filters[0].headers.add, ElementsAre(Pair("x-mesh", "sluice")));
  EXPECT_THAT(rule.filters[0].headers.remove, ElementsAre("x-debug"));
  EXPECT_EQ(rule.filters[1].type, HttpRouteFilter::Type::kUrlRewrite);
  EXPECT_EQ(rule.filters[1].hostname, "reviews.internal");
  EXPECT_EQ(rule.filters[1].path->type, "ReplacePrefixMatch");
  EXPECT_EQ(rule.filters[1].path->value, "/v2");
  EXPECT_EQ(rule.filters[2].type, HttpRouteFilter::Type::kRequestMirror);
  EXPECT_EQ(rule.filters[2].mirror.name, "shadow");
  EXPECT_DOUBLE_EQ(rule.filters[2].mirror_percent.value(), 25);

  ASSERT_EQ(rule.backend_refs.size(), 2u);
  EXPECT_EQ(rule.backend_refs[0].weight, 90u);
  EXPECT_EQ(rule.backend_refs[1].weight, 10u);
  EXPECT_EQ(rule.backend_refs[1].filters.at(0).type,
            HttpRouteFilter::Type::kResponseHeaderModifier);
  EXPECT_EQ(rule.request_timeout, milliseconds(5000));
  EXPECT_EQ(rule.backend_request_timeout, milliseconds(2000));

  const HttpRouteRule& redirect = route.rules[1];
  EXPECT_EQ(redirect.matches.at(0).path_type, GatewayMatchType::kPathPrefix);
  EXPECT_EQ(redirect.filters.at(0).type, HttpRouteFilter::Type::kRequestRedirect);
  EXPECT_EQ(redirect.filters[0].scheme, "https");
  EXPECT_EQ(redirect.filters[0].status_code, 301);
  EXPECT_EQ(redirect.filters.at(1).extension.name, "audit");
}

// ---- rejections -----------------------------------------------------------------------

constexpr std::string_view kGatewayHeader = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec:
)";

TEST(GatewayDecoding, RejectsGatewayWithoutClass) {
  expectRejected(
      loadAfter(kGatewayHeader, R"(  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
)"),
      4, "spec.gatewayClassName", "required");
}

TEST(GatewayDecoding, RejectsDuplicateListenerName) {
  expectRejected(loadAfter(kGatewayHeader, R"(  gatewayClassName: sluice-waypoint
  listeners:
  - {name: mesh, port: 15008, protocol: HBONE}
  - {name: mesh, port: 15009, protocol: HBONE}
)"),
                 8, "spec.listeners[1].name", "duplicate listener \"mesh\"");
}

TEST(GatewayDecoding, RejectsListenerPortOutOfRange) {
  expectRejected(loadAfter(kGatewayHeader, R"(  gatewayClassName: sluice-waypoint
  listeners:
  - name: mesh
    port: 150080
    protocol: HBONE
)"),
                 8, "spec.listeners[0].port", "must be a port number 1..65535");
}

constexpr std::string_view kRouteHeader = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{name: waypoint}]
  rules:
)";

TEST(HttpRouteDecoding, RejectsUnknownPathType) {
  expectRejected(loadAfter(kRouteHeader, R"(  - matches:
    - path: {type: Prefix, value: /api}
)"),
                 8, "spec.rules[0].matches[0].path.type",
                 "must be one of Exact, PathPrefix, RegularExpression, got \"Prefix\"");
}

TEST(HttpRouteDecoding, RejectsPrefixThatDoesNotStartWithSlash) {
  expectRejected(loadAfter(kRouteHeader, R"(  - matches:
    - path: {value: api}
)"),
                 8, "spec.rules[0].matches[0].path.value",
                 "must start with \"/\" for type PathPrefix, got \"api\"");
}

TEST(HttpRouteDecoding, RejectsUnknownMethod) {
  expectRejected(loadAfter(kRouteHeader, R"(  - matches:
    - method: FETCH
)"),
                 8, "spec.rules[0].matches[0].method", "must be one of GET, HEAD, POST");
}

TEST(HttpRouteDecoding, RejectsUnknownFilterType) {
  expectRejected(loadAfter(kRouteHeader, R"(  - filters:
    - type: HeaderModifier
)"),
                 8, "spec.rules[0].filters[0].type",
                 "must be one of RequestHeaderModifier, ResponseHeaderModifier");
}

TEST(HttpRouteDecoding, RejectsFilterConfigurationOfAnotherType) {
  expectRejected(loadAfter(kRouteHeader, R"(  - filters:
    - type: RequestHeaderModifier
      urlRewrite: {hostname: elsewhere}
)"),
                 9, "spec.rules[0].filters[0].urlRewrite",
                 "not allowed with type RequestHeaderModifier");
}

TEST(HttpRouteDecoding, RejectsFilterWithoutItsConfiguration) {
  expectRejected(loadAfter(kRouteHeader, R"(  - filters:
    - type: RequestRedirect
)"),
                 8, "spec.rules[0].filters[0].requestRedirect", "required");
}

TEST(HttpRouteDecoding, RejectsWeightAboveTheSpecificationsLimit) {
  expectRejected(loadAfter(kRouteHeader, R"(  - backendRefs:
    - name: reviews
      port: 9080
      weight: 1000001
)"),
                 10, "spec.rules[0].backendRefs[0].weight", "must be an integer 0..1000000");
}

TEST(HttpRouteDecoding, RejectsNegativeWeight) {
  expectRejected(loadAfter(kRouteHeader, R"(  - backendRefs:
    - {name: reviews, port: 9080, weight: -1}
)"),
                 8, "spec.rules[0].backendRefs[0].weight", "must not be negative");
}

TEST(HttpRouteDecoding, RejectsServiceBackendWithoutPort) {
  expectRejected(loadAfter(kRouteHeader, R"(  - backendRefs:
    - name: reviews
)"),
                 8, "spec.rules[0].backendRefs[0].port", "required for a Service backend");
}

TEST(HttpRouteDecoding, RejectsBackendTimeoutLongerThanRequestTimeout) {
  expectRejected(loadAfter(kRouteHeader, R"(  - timeouts:
      request: 1s
      backendRequest: 2s
)"),
                 9, "spec.rules[0].timeouts.backendRequest",
                 "must not be longer than timeouts.request (1s)");
}

TEST(HttpRouteDecoding, RejectsBadTimeout) {
  expectRejected(loadAfter(kRouteHeader, R"(  - timeouts:
      request: soon
)"),
                 8, "spec.rules[0].timeouts.request", "must be a duration");
}

TEST(HttpRouteDecoding, RejectsRedirectStatusTheSpecificationDoesNotAllow) {
  expectRejected(loadAfter(kRouteHeader, R"(  - filters:
    - type: RequestRedirect
      requestRedirect:
        statusCode: 304
)"),
                 10, "spec.rules[0].filters[0].requestRedirect.statusCode",
                 "must be one of 301, 302, 303, 307, 308");
}

TEST(HttpRouteDecoding, RejectsHeaderModifiedTwice) {
  expectRejected(loadAfter(kRouteHeader, R"(  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - {name: X-Route, value: a}
        add:
        - {name: x-route, value: b}
)"),
                 13, "spec.rules[0].filters[0].requestHeaderModifier.add[0].name",
                 "header \"x-route\" is modified twice");
}

TEST(HttpRouteDecoding, RejectsParentRefWithoutName) {
  expectRejected(load(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs:
  - kind: Gateway
)"),
                 6, "spec.parentRefs[0].name", "required");
}

}  // namespace
}  // namespace sluice::config
