// DestinationRule: subsets, traffic policies, versions, rejections.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using testing::expectRejected;
using testing::load;
using testing::loadAfter;
using testing::onlyReport;
using ::testing::Pair;

const DestinationRule& onlyRule(const LoadResult& result) {
  return testing::onlyObject(result, &Snapshot::destinationRules);
}

TEST(DestinationRuleDecoding, AcceptsEveryNetworkingApiVersion) {
  for (const char* version : {"v1", "v1beta1", "v1alpha3"}) {
    auto result = load(std::string("apiVersion: networking.istio.io/") + version + R"(
kind: DestinationRule
metadata: {name: web}
spec: {host: web}
)");
    EXPECT_EQ(onlyRule(result).host, "web") << version;
  }
}

TEST(DestinationRuleDecoding, ReadsSubsetsAndEveryTrafficPolicyPart) {
  auto result = load(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 1000
        maxRequestsPerConnection: 1
        maxRetries: 3
        idleTimeout: 1m
    outlierDetection:
      consecutive5xxErrors: 5
      consecutiveGatewayErrors: 2
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
      minHealthPercent: 20
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpCookie: {name: user, path: /, ttl: 0s}
)");
  const DestinationRule& rule = onlyRule(result);
  EXPECT_EQ(rule.host, "reviews");
  ASSERT_TRUE(rule.traffic_policy.has_value());
  const TrafficPolicy& policy = *rule.traffic_policy;
  EXPECT_EQ(policy.load_balancer->simple, LoadBalancer::kLeastRequest);
  const ConnectionPool& pool = policy.connection_pool.value();
  EXPECT_EQ(pool.max_connections, 100u);
  EXPECT_EQ(pool.connect_timeout, milliseconds(30));
  EXPECT_EQ(pool.http1_max_pending_requests, 10u);
  EXPECT_EQ(pool.http2_max_requests, 1000u);
  EXPECT_EQ(pool.max_requests_per_connection, 1u);
  EXPECT_EQ(pool.max_retries, 3u);
  EXPECT_EQ(pool.idle_timeout, milliseconds(60'000));
  const OutlierDetection& outlier = policy.outlier_detection.value();
  EXPECT_EQ(outlier.consecutive_5xx_errors, 5u);
  EXPECT_EQ(outlier.consecutive_gateway_errors, 2u);
  EXPECT_EQ(outlier.interval, milliseconds(10'000));
  EXPECT_EQ(outlier.base_ejection_time, milliseconds(30'000));
  EXPECT_EQ(outlier.max_ejection_percent, 50u);
  EXPECT_EQ(outlier.min_health_percent, 20u);
  EXPECT_EQ(policy.tls_mode, "ISTIO_MUTUAL");
  ASSERT_EQ(rule.port_level_settings.size(), 1u);
  EXPECT_EQ(rule.port_level_settings[0].port, 9080);
  EXPECT_EQ(rule.port_level_settings[0].policy.load_balancer->simple, LoadBalancer::kRandom);

  ASSERT_EQ(rule.subsets.size(), 2u);
  EXPECT_EQ(rule.subsets[0].name, "v1");
  EXPECT_THAT(rule.subsets[0].labels, ElementsAre(Pair("version", "v1")));
  EXPECT_FALSE(rule.subsets[0].traffic_policy.has_value());
  const ConsistentHash& hash =
      rule.subsets[1].traffic_policy.value().load_balancer.value().consistent_hash.value();
  EXPECT_EQ(hash.key, ConsistentHash::Key::kCookie);
  EXPECT_EQ(hash.name, "user");
  EXPECT_EQ(hash.cookie_path, "/");
  EXPECT_EQ(hash.cookie_ttl, milliseconds(0));
}

TEST(DestinationRuleDecoding, ReadsEachConsistentHashKey) {
  for (auto [key, expected] :
       {std::pair{"httpHeaderName: x-user", ConsistentHash::Key::kHeader},
        std::pair{"useSourceIp: true", ConsistentHash::Key::kSourceIp},
        std::pair{"httpQueryParameterName: user", ConsistentHash::Key::kQueryParameter}}) {
    auto result = load(std::string(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  trafficPolicy: {loadBalancer: {consistentHash: {)") +
                       key + "}}}\n");
    const TrafficPolicy& policy = onlyRule(result).traffic_policy.value_or(TrafficPolicy{});
    ASSERT_TRUE(policy.load_balancer && policy.load_balancer->consistent_hash) << key;
    EXPECT_EQ(policy.load_balancer->consistent_hash->key, expected) << key;
  }
}

TEST(DestinationRuleDecoding, ReadsDeprecatedLeastConnAsLeastRequest) {
  auto result = load(R"(apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: web}
spec: {host: web, trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}}
)");
  EXPECT_EQ(onlyRule(result).traffic_policy.value().load_balancer->simple,
            LoadBalancer::kLeastRequest);
}

// ---- rejections -----------------------------------------------------------------------

constexpr std::string_view kWebRule = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
)";

TEST(DestinationRuleDecoding, RejectsUnknownLoadBalancer) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    loadBalancer:
      simple: FASTEST
)"),
                 8, "spec.trafficPolicy.loadBalancer.simple",
                 "must be one of UNSPECIFIED, ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH");
}

TEST(DestinationRuleDecoding, RejectsSimpleCombinedWithConsistentHash) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      consistentHash: {useSourceIp: true}
)"),
                 9, "spec.trafficPolicy.loadBalancer.consistentHash", "cannot be combined");
}

TEST(DestinationRuleDecoding, RejectsConsistentHashWithTwoKeys) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    loadBalancer:
      consistentHash: {useSourceIp: true, httpHeaderName: x-user}
)"),
                 8, "spec.trafficPolicy.loadBalancer.consistentHash", "exactly one of");
}

TEST(DestinationRuleDecoding, RejectsMissingHost) {
  expectRejected(load(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  subsets: [{name: v1}]
)"),
                 4, "spec.host", "required");
}

TEST(DestinationRuleDecoding, RejectsSubsetWithoutName) {
  expectRejected(loadAfter(kWebRule, R"(  subsets:
  - labels: {version: v1}
)"),
                 7, "spec.subsets[0].name", "required");
}

TEST(DestinationRuleDecoding, RejectsDuplicateSubset) {
  expectRejected(loadAfter(kWebRule, R"(  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v1, labels: {version: v2}}
)"),
                 8, "spec.subsets[1].name", "duplicate subset \"v1\"");
}

TEST(DestinationRuleDecoding, RejectsMaxEjectionPercentAbove100) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    outlierDetection:
      maxEjectionPercent: 120
)"),
                 8, "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
                 "must be an integer 0..100, got \"120\"");
}

TEST(DestinationRuleDecoding, RejectsBadOutlierInterval) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    outlierDetection:
      interval: 10
)"),
                 8, "spec.trafficPolicy.outlierDetection.interval",
                 "must be a duration such as \"5s\"");
}

TEST(DestinationRuleDecoding, RejectsNegativeMaxConnections) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: -5}
)"),
                 8, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "must not be negative");
}

TEST(DestinationRuleDecoding, RejectsUnknownFieldInConnectionPool) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    connectionPool:
      http: {maxRequests: 5}
)"),
                 8, "spec.trafficPolicy.connectionPool.http.maxRequests", "unknown field");
}

TEST(DestinationRuleDecoding, RejectsUnknownTlsMode) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy: {tls: {mode: STRICT}}
)"),
                 6, "spec.trafficPolicy.tls.mode",
                 "must be one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL, got \"STRICT\"");
}

TEST(DestinationRuleDecoding, RejectsDuplicatePortLevelSetting) {
  expectRejected(loadAfter(kWebRule, R"(  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
    - port: {number: 80}
)"),
                 9, "spec.trafficPolicy.portLevelSettings[1].port.number", "duplicate port 80");
}

}  // namespace
}  // namespace sluice::config
