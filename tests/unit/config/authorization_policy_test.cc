// AuthorizationPolicy: rules recorded as written, versions, rejections.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using testing::expectRejected;
using ::testing::IsEmpty;
using testing::load;
using testing::loadAfter;
using testing::onlyReport;
using ::testing::Pair;

const AuthorizationPolicy& onlyPolicy(const LoadResult& result) {
  return testing::onlyObject(result, &Snapshot::authorizationPolicies);
}

TEST(AuthorizationPolicyDecoding, ReadsSourcesOperationsAndConditions) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: shop}
spec:
  selector:
    matchLabels: {app: reviews}
  action: DENY
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/shop/sa/productpage]
        notNamespaces: [untrusted]
        ipBlocks: [10.0.0.0/8, 192.168.1.1, "fd00::/64"]
        requestPrincipals: ["issuer/subject"]
    to:
    - operation:
        methods: [GET, HEAD]
        paths: [/reviews/*]
        notPaths: [/reviews/admin]
        ports: ["9080", 9443]
        hosts: [reviews.shop.svc.cluster.local]
    when:
    - key: request.headers[x-version]
      values: [v1]
    - key: source.ip
      notValues: [10.1.2.3]
)");
  const AuthorizationPolicy& policy = onlyPolicy(result);
  EXPECT_THAT(policy.selector.value(), ElementsAre(Pair("app", "reviews")));
  EXPECT_EQ(policy.action, AuthorizationAction::kDeny);
  ASSERT_EQ(policy.rules.size(), 1u);
  const AuthorizationRule& rule = policy.rules[0];
  ASSERT_EQ(rule.from.size(), 1u);
  EXPECT_THAT(rule.from[0].principals, ElementsAre("cluster.local/ns/shop/sa/productpage"));
  EXPECT_THAT(rule.from[0].not_namespaces, ElementsAre("untrusted"));
  EXPECT_THAT(rule.from[0].ip_blocks, ElementsAre("10.0.0.0/8", "192.168.1.1", "fd00::/64"));
  EXPECT_THAT(rule.from[0].request_principals, ElementsAre("issuer/subject"));
  ASSERT_EQ(rule.to.size(), 1u);
  EXPECT_THAT(rule.to[0].methods, ElementsAre("GET", "HEAD"));
  EXPECT_THAT(rule.to[0].paths, ElementsAre("/reviews/*"));
  EXPECT_THAT(rule.to[0].not_paths, ElementsAre("/reviews/admin"));
  EXPECT_THAT(rule.to[0].ports, ElementsAre(9080, 9443));
  EXPECT_THAT(rule.to[0].hosts, ElementsAre("reviews.shop.svc.cluster.local"));
  ASSERT_EQ(rule.when.size(), 2u);
  EXPECT_EQ(rule.when[0].key, "request.headers[x-version]");
  EXPECT_THAT(rule.when[0].values, ElementsAre("v1"));
  EXPECT_THAT(rule.when[1].not_values, ElementsAre("10.1.2.3"));
}

TEST(AuthorizationPolicyDecoding, DefaultsToAllowAndKeepsEmptyRulesAsWritten) {
  auto result = load(R"(apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  rules: [{}]
)");
  ASSERT_NE(result.snapshot, nullptr);
  auto policies = result.snapshot->authorizationPolicies("shop");
  ASSERT_EQ(policies.size(), 2u);
  EXPECT_EQ(policies[0].meta.name, "allow-all");
  EXPECT_EQ(policies[0].action, AuthorizationAction::kAllow);
  ASSERT_EQ(policies[0].rules.size(), 1u);
  EXPECT_THAT(policies[0].rules[0].from, IsEmpty());
  EXPECT_EQ(policies[1].meta.name, "allow-nothing");
  EXPECT_EQ(policies[1].action, AuthorizationAction::kAllow);
  EXPECT_THAT(policies[1].rules, IsEmpty());
  EXPECT_FALSE(policies[1].selector.has_value());
}

TEST(AuthorizationPolicyDecoding, ReadsTargetRefsAndCustomProvider) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: shop}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: [/admin]}}]}]
)");
  const AuthorizationPolicy& policy = onlyPolicy(result);
  ASSERT_EQ(policy.target_refs.size(), 1u);
  EXPECT_EQ(policy.target_refs[0].kind, "Gateway");
  EXPECT_EQ(policy.target_refs[0].group, "gateway.networking.k8s.io");
  EXPECT_EQ(policy.target_refs[0].name, "waypoint");
  EXPECT_EQ(policy.action, AuthorizationAction::kCustom);
  EXPECT_EQ(policy.provider, "opa");
}

// ---- rejections -----------------------------------------------------------------------

constexpr std::string_view kPolicyHeader = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p}
spec:
)";

TEST(AuthorizationPolicyDecoding, RejectsUnknownAction) {
  expectRejected(loadAfter(kPolicyHeader, R"(  action: REJECT
)"),
                 5, "spec.action", "must be one of ALLOW, DENY, AUDIT, CUSTOM, got \"REJECT\"");
}

TEST(AuthorizationPolicyDecoding, RejectsCustomWithoutProvider) {
  expectRejected(loadAfter(kPolicyHeader, R"(  action: CUSTOM
)"),
                 5, "spec.action", "CUSTOM requires spec.provider.name");
}

TEST(AuthorizationPolicyDecoding, RejectsMisspeltOperationField) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - to:
    - operation:
        notPath: [/admin]
)"),
                 8, "spec.rules[0].to[0].operation.notPath",
                 "unknown field (known: hosts, notHosts, ports, notPorts, methods, notMethods, "
                 "paths, notPaths)");
}

TEST(AuthorizationPolicyDecoding, RejectsFromWithoutSource) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - from:
    - {}
)"),
                 7, "spec.rules[0].from[0].source", "required");
}

TEST(AuthorizationPolicyDecoding, RejectsInvalidIpBlock) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - from:
    - source:
        ipBlocks: [10.0.0.0/33]
)"),
                 8, "spec.rules[0].from[0].source.ipBlocks[0]",
                 "must be an IP address or CIDR such as 10.0.0.0/16, got \"10.0.0.0/33\"");
}

TEST(AuthorizationPolicyDecoding, RejectsPortThatIsNotANumber) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - to:
    - operation:
        ports: [http]
)"),
                 8, "spec.rules[0].to[0].operation.ports[0]", "must be a port number 1..65535");
}

TEST(AuthorizationPolicyDecoding, RejectsConditionWithoutValues) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - when:
    - key: request.auth.claims[iss]
)"),
                 7, "spec.rules[0].when[0]", "must set values or notValues");
}

TEST(AuthorizationPolicyDecoding, RejectsEmptyPrincipal) {
  expectRejected(loadAfter(kPolicyHeader, R"(  rules:
  - from:
    - source:
        principals: [""]
)"),
                 8, "spec.rules[0].from[0].source.principals[0]", "must not be empty");
}

TEST(AuthorizationPolicyDecoding, RejectsSelectorCombinedWithTargetRefs) {
  expectRejected(loadAfter(kPolicyHeader, R"(  selector: {matchLabels: {app: web}}
  targetRefs: [{kind: Gateway, name: waypoint}]
)"),
                 5, "spec.selector", "cannot be combined with targetRef");
}

}  // namespace
}  // namespace sluice::config
