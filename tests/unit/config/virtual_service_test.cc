// VirtualService: what is read back, which versions are accepted, and which mistakes are
// rejected with which line, field and reason.
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

const VirtualService& onlyVirtualService(const LoadResult& result) {
  return testing::onlyObject(result, &Snapshot::virtualServices);
}

// A VirtualService "web" in namespace default, up to its http: list.
constexpr std::string_view kHttpHeader = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
)";

TEST(VirtualServiceDecoding, AcceptsEveryNetworkingApiVersion) {
  for (const char* version : {"v1", "v1beta1", "v1alpha3"}) {
    auto result = load(std::string("apiVersion: networking.istio.io/") + version + R"(
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}]}]
)");
    EXPECT_EQ(onlyVirtualService(result).hosts, std::vector<std::string>{"web"}) << version;
  }
}

TEST(VirtualServiceDecoding, ReadsMatchesRewritesHeadersAndFaults) {
  auto result = load(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews, reviews.example.com]
  gateways: [mesh]
  http:
  - name: jason
    match:
    - name: by-user
      uri: {prefix: /api/}
      ignoreUriCase: true
      method: {exact: GET}
      authority: {regex: "reviews(:[0-9]+)?"}
      headers:
        end-user: {exact: jason}
        x-trace: {}
      queryParams:
        debug: {exact: "1"}
      withoutHeaders:
        x-canary: {}
      port: 9080
      sourceLabels: {app: productpage}
      sourceNamespace: front
    rewrite: {uri: /v2/api/, authority: reviews-v2}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      headers:
        request:
          set: {x-route: jason}
          remove: [x-debug]
        response:
          add: {x-served-by: v2}
    headers:
      request: {add: {x-mesh: sluice}}
    fault:
      delay: {fixedDelay: 1.5s, percentage: {value: 0.1}}
      abort: {httpStatus: 503, percentage: {value: 100}}
    mirror: {host: reviews-shadow}
    mirrorPercentage: {value: 5}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET]
      maxAge: 24h
  - route:
    - destination: {host: reviews, subset: v1}
)");
  const VirtualService& service = onlyVirtualService(result);
  EXPECT_THAT(service.hosts, ElementsAre("reviews", "reviews.example.com"));
  EXPECT_THAT(service.gateways, ElementsAre("mesh"));
  ASSERT_EQ(service.http.size(), 2u);
  const VirtualServiceRoute& route = service.http[0];
  EXPECT_EQ(route.name, "jason");
  ASSERT_EQ(route.match.size(), 1u);
  const HttpMatchRequest& match = route.match[0];
  EXPECT_EQ(match.name, "by-user");
  ASSERT_TRUE(match.uri.has_value());
  EXPECT_EQ(match.uri->type, StringMatch::Type::kPrefix);
  EXPECT_EQ(match.uri->value, "/api/");
  EXPECT_TRUE(match.ignore_uri_case);
  EXPECT_EQ(match.method->value, "GET");
  EXPECT_EQ(match.authority->type, StringMatch::Type::kRegex);
  ASSERT_EQ(match.headers.size(), 2u);
  EXPECT_EQ(match.headers.at("end-user").value, "jason");
  EXPECT_EQ(match.headers.at("x-trace").type, StringMatch::Type::kPresent);
  EXPECT_EQ(match.query_params.at("debug").value, "1");
  EXPECT_EQ(match.without_headers.at("x-canary").type, StringMatch::Type::kPresent);
  EXPECT_EQ(match.port, 9080);
  EXPECT_THAT(match.source_labels, ElementsAre(Pair("app", "productpage")));
  EXPECT_EQ(match.source_namespace, "front");

  ASSERT_TRUE(route.rewrite.has_value());
  EXPECT_EQ(route.rewrite->uri, "/v2/api/");
  EXPECT_EQ(route.rewrite->authority, "reviews-v2");
  ASSERT_EQ(route.route.size(), 1u);
  const HttpRouteDestination& destination = route.route[0];
  EXPECT_EQ(destination.destination.host, "reviews");
  EXPECT_EQ(destination.destination.subset, "v2");
  EXPECT_EQ(destination.destination.port, 9080);
  EXPECT_EQ(destination.weight, std::nullopt);
  EXPECT_THAT(destination.headers.request.set, ElementsAre(Pair("x-route", "jason")));
  EXPECT_THAT(destination.headers.request.remove, ElementsAre("x-debug"));
  EXPECT_THAT(destination.headers.response.add, ElementsAre(Pair("x-served-by", "v2")));
  EXPECT_THAT(route.headers.request.add, ElementsAre(Pair("x-mesh", "sluice")));

  ASSERT_TRUE(route.fault.has_value());
  ASSERT_TRUE(route.fault->delay.has_value());
  EXPECT_EQ(route.fault->delay->fixed_delay, milliseconds(1500));
  EXPECT_DOUBLE_EQ(route.fault->delay->percentage.value(), 0.1);
  ASSERT_TRUE(route.fault->abort.has_value());
  EXPECT_EQ(route.fault->abort->http_status, 503);
  EXPECT_DOUBLE_EQ(route.fault->abort->percentage.value(), 100);
  ASSERT_EQ(route.mirrors.size(), 1u);
  EXPECT_EQ(route.mirrors[0].destination.host, "reviews-shadow");
  EXPECT_DOUBLE_EQ(route.mirrors[0].percentage.value(), 5);
  EXPECT_TRUE(route.has_cors_policy);
  EXPECT_EQ(route.timeout, std::nullopt);
  EXPECT_EQ(route.retries, std::nullopt);

  EXPECT_THAT(service.http[1].match, IsEmpty());
  EXPECT_EQ(service.http[1].route[0].destination.subset, "v1");
}

TEST(VirtualServiceDecoding, SplitsRetryOnIntoConditionsAndStatusCodes) {
  auto result = loadAfter(kHttpHeader, R"(  - route: [{destination: {host: web}}]
    retries:
      attempts: 4
      perTryTimeout: 250ms
      retryOn: "gateway-error, 503,connect-failure,retriable-status-codes"
      retryRemoteLocalities: true
)");
  const HttpRetry& retry = onlyVirtualService(result).http.at(0).retries.value();
  EXPECT_EQ(retry.attempts, 4u);
  EXPECT_EQ(retry.per_try_timeout, milliseconds(250));
  EXPECT_THAT(retry.retry_on,
              ElementsAre("gateway-error", "connect-failure", "retriable-status-codes"));
  EXPECT_THAT(retry.retry_on_statuses, ElementsAre(503));
  EXPECT_EQ(retry.retry_remote_localities, true);
}

TEST(VirtualServiceDecoding, KeepsZeroAttemptsThatDisableRetries) {
  auto result = load(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}], retries: {attempts: 0}, timeout: 0s}]
)");
  const VirtualServiceRoute& route = onlyVirtualService(result).http.at(0);
  ASSERT_TRUE(route.retries.has_value());
  EXPECT_EQ(route.retries->attempts, 0u);
  EXPECT_THAT(route.retries->retry_on, IsEmpty());
  EXPECT_EQ(route.timeout, milliseconds(0));
}

TEST(VirtualServiceDecoding, ReadsRedirectAndDirectResponseRoutes) {
  auto result = loadAfter(kHttpHeader, R"(  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: new.example.com, redirectCode: 308}
  - match: [{uri: {exact: /health}}]
    directResponse: {status: 200, body: {string: ok}}
)");
  const VirtualService& service = onlyVirtualService(result);
  ASSERT_EQ(service.http.size(), 2u);
  ASSERT_TRUE(service.http[0].redirect.has_value());
  EXPECT_EQ(service.http[0].redirect->uri, "/new");
  EXPECT_EQ(service.http[0].redirect->authority, "new.example.com");
  EXPECT_EQ(service.http[0].redirect->redirect_code, 308);
  ASSERT_TRUE(service.http[1].direct_response.has_value());
  EXPECT_EQ(service.http[1].direct_response->status, 200);
  EXPECT_EQ(service.http[1].direct_response->body, "ok");
}

TEST(VirtualServiceDecoding, AcceptsTcpAndTlsRoutes) {
  auto result = load(R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db]
  tcp:
  - match: [{port: 5432, destinationSubnets: [10.0.0.0/16]}]
    route: [{destination: {host: db, port: {number: 5432}}, weight: 100}]
  tls:
  - match: [{sniHosts: [db.example.com], port: 443}]
    route: [{destination: {host: db-tls}}]
)");
  const VirtualService& service = onlyVirtualService(result);
  ASSERT_EQ(service.tcp.size(), 1u);
  EXPECT_EQ(service.tcp[0].match.at(0).port, 5432);
  EXPECT_THAT(service.tcp[0].match.at(0).destination_subnets, ElementsAre("10.0.0.0/16"));
  EXPECT_EQ(service.tcp[0].route.at(0).weight, 100u);
  ASSERT_EQ(service.tls.size(), 1u);
  EXPECT_THAT(service.tls[0].match.at(0).sni_hosts, ElementsAre("db.example.com"));
  EXPECT_EQ(service.tls[0].route.at(0).destination.host, "db-tls");
}

TEST(VirtualServiceDecoding, AcceptsDurationsInEveryUnitIstioDocuments) {
  for (auto [text, expected] :
       {std::pair{"5s", 5000}, std::pair{"100ms", 100}, std::pair{"1.5s", 1500},
        std::pair{"1m", 60'000}, std::pair{"1h", 3'600'000}, std::pair{"1h30m", 5'400'000},
        std::pair{"2500us", -1}, std::pair{"0.25s", 250}}) {
    auto result = load(std::string(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}], timeout: )") +
                       text + "}]\n");
    if (expected < 0) {
      EXPECT_EQ(result.snapshot, nullptr) << text << " is not a whole number of milliseconds";
      continue;
    }
    EXPECT_EQ(onlyVirtualService(result).http.at(0).timeout, milliseconds(expected)) << text;
  }
}

// ---- rejections -----------------------------------------------------------------------

constexpr std::string_view kHeader = R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route: [{destination: {host: web}}]
)";

TEST(VirtualServiceDecoding, RejectsUnknownRetryOnToken) {
  expectRejected(loadAfter(kHeader, "    retries: {attempts: 3, retryOn: \"5xx,gateway-eror\"}\n"),
                 8, "spec.http[0].retries.retryOn",
                 "unknown retry condition \"gateway-eror\" (known: 5xx, gateway-error");
}

TEST(VirtualServiceDecoding, RejectsRetryOnStatusOutsideHttpRange) {
  expectRejected(loadAfter(kHeader, "    retries: {attempts: 3, retryOn: \"5xx,600\"}\n"), 8,
                 "spec.http[0].retries.retryOn", "unknown retry condition \"600\"");
}

TEST(VirtualServiceDecoding, RejectsEmptyRetryOnCondition) {
  expectRejected(loadAfter(kHeader, "    retries: {attempts: 3, retryOn: \"5xx,,reset\"}\n"), 8,
                 "spec.http[0].retries.retryOn", "has an empty condition");
}

TEST(VirtualServiceDecoding, RejectsTimeoutThatIsNotADuration) {
  expectRejected(loadAfter(kHeader, "    timeout: 5 seconds\n"), 8, "spec.http[0].timeout",
                 "must be a duration such as \"5s\"");
}

TEST(VirtualServiceDecoding, RejectsNegativeTimeout) {
  expectRejected(loadAfter(kHeader, "    timeout: -1s\n"), 8, "spec.http[0].timeout",
                 "got \"-1s\"");
}

TEST(VirtualServiceDecoding, RejectsZeroPerTryTimeout) {
  expectRejected(loadAfter(kHeader, "    retries: {attempts: 2, perTryTimeout: 0s}\n"), 8,
                 "spec.http[0].retries.perTryTimeout", "must be at least 1ms");
}

TEST(VirtualServiceDecoding, RejectsNegativeRetryAttempts) {
  expectRejected(loadAfter(kHeader, "    retries: {attempts: -1}\n"), 8,
                 "spec.http[0].retries.attempts", "must not be negative, got \"-1\"");
}

TEST(VirtualServiceDecoding, RejectsMisspeltRetries) {
  expectRejected(loadAfter(kHeader, "    retires: {attempts: 3}\n"), 8, "spec.http[0].retires",
                 "unknown field (known: name, match, route, redirect");
}

TEST(VirtualServiceDecoding, RejectsNegativeWeight) {
  expectRejected(loadAfter(kHttpHeader, R"(  - route:
    - destination: {host: web, subset: v1}
      weight: -10
)"),
                 9, "spec.http[0].route[0].weight", "must not be negative, got \"-10\"");
}

TEST(VirtualServiceDecoding, RejectsDestinationWithoutHost) {
  expectRejected(loadAfter(kHttpHeader, R"(  - route:
    - destination: {subset: v1}
)"),
                 8, "spec.http[0].route[0].destination.host", "required");
}

TEST(VirtualServiceDecoding, RejectsFaultPercentageAbove100) {
  expectRejected(
      loadAfter(kHeader, "    fault:\n      abort: {httpStatus: 503, percentage: {value: 150}}\n"),
      9, "spec.http[0].fault.abort.percentage.value", "must be a number 0..100, got \"150\"");
}

TEST(VirtualServiceDecoding, RejectsAbortStatusOutsideHttpRange) {
  expectRejected(loadAfter(kHeader, "    fault:\n      abort:\n        httpStatus: 999\n"), 10,
                 "spec.http[0].fault.abort.httpStatus", "must be an integer 200..599");
}

TEST(VirtualServiceDecoding, RejectsAbortWithoutStatus) {
  expectRejected(loadAfter(kHeader, "    fault:\n      abort:\n        percentage: {value: 1}\n"),
                 9, "spec.http[0].fault.abort", "must set exactly one of httpStatus, grpcStatus");
}

TEST(VirtualServiceDecoding, RejectsDelayWithoutFixedDelay) {
  expectRejected(loadAfter(kHeader, "    fault:\n      delay: {percentage: {value: 1}}\n"), 9,
                 "spec.http[0].fault.delay", "must set fixedDelay");
}

TEST(VirtualServiceDecoding, RejectsEmptyRegex) {
  expectRejected(loadAfter(kHttpHeader, R"(  - match:
    - uri:
        regex: ""
    route: [{destination: {host: web}}]
)"),
                 9, "spec.http[0].match[0].uri.regex", "must not be empty");
}

TEST(VirtualServiceDecoding, RejectsMatchWithTwoKindsOfMatch) {
  expectRejected(loadAfter(kHttpHeader, R"(  - match:
    - uri: {exact: /a, prefix: /b}
    route: [{destination: {host: web}}]
)"),
                 8, "spec.http[0].match[0].uri", "must set only one of exact, prefix, regex");
}

TEST(VirtualServiceDecoding, RejectsUriMatchWithoutValue) {
  expectRejected(loadAfter(kHttpHeader, R"(  - match: [{uri: {}}]
    route: [{destination: {host: web}}]
)"),
                 7, "spec.http[0].match[0].uri", "must set one of exact, prefix, regex");
}

TEST(VirtualServiceDecoding, RejectsRouteCombinedWithRedirect) {
  expectRejected(loadAfter(kHeader, "    redirect: {uri: /elsewhere}\n"), 7, "spec.http[0]",
                 "route, redirect, directResponse and delegate cannot be combined");
}

TEST(VirtualServiceDecoding, RejectsHttpRouteWithNowhereToGo) {
  expectRejected(loadAfter(kHttpHeader, R"(  - match: [{uri: {prefix: /}}]
    timeout: 5s
)"),
                 7, "spec.http[0]", "must set one of route, redirect, directResponse, delegate");
}

TEST(VirtualServiceDecoding, RejectsUnknownFieldInSpec) {
  expectRejected(load(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  htttp: []
)"),
                 6, "spec.htttp", "unknown field");
}

TEST(VirtualServiceDecoding, RejectsTlsRouteWithoutSniHosts) {
  expectRejected(load(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db]
  tls:
  - match: [{port: 443}]
    route: [{destination: {host: db}}]
)"),
                 7, "spec.tls[0].match[0].sniHosts", "required");
}

}  // namespace
}  // namespace sluice::config
