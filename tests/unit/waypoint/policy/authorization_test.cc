// L7 AuthorizationPolicy: evaluation order, rule structure, Istio string and IP matching.
#include "waypoint/policy/authorization.h"

#include <gtest/gtest.h>

namespace sluice::waypoint {
namespace {

using Action = AuthorizationPolicy::Action;
using Reason = AuthorizationDecision::Reason;

const Peer kSleep{"cluster.local/ns/default/sa/sleep", "default", "10.1.0.5"};
const Peer kOther{"cluster.local/ns/test/sa/other", "test", "192.168.3.4"};

RequestView request(std::string_view method, std::string_view target,
                    std::string_view authority = "httpbin.foo:8000") {
  RequestView r;
  r.method = method;
  r.authority = authority;
  r.setTarget(target);
  return r;
}

Operation methodsAndPaths(std::vector<std::string> methods, std::vector<std::string> paths) {
  Operation o;
  o.methods.values = std::move(methods);
  o.paths.values = std::move(paths);
  return o;
}

AuthorizationPolicy policy(std::string name, Action action, std::vector<AuthorizationRule> rules) {
  return {std::move(name), action, std::move(rules)};
}

AuthorizationRule to(Operation o) { return {{}, {std::move(o)}, {}}; }

AuthorizationRule from(Source s) { return {{std::move(s)}, {}, {}}; }

Source principals(std::vector<std::string> p) {
  Source s;
  s.principals.values = std::move(p);
  return s;
}

Condition when(std::string key, std::vector<std::string> values,
               std::vector<std::string> not_values = {}) {
  auto c = Condition::create(std::move(key), std::move(values), std::move(not_values));
  EXPECT_TRUE(c.ok()) << c.message();
  return *c;
}

AuthorizationDecision check(const std::vector<AuthorizationPolicy>& policies, const Peer& peer,
                            const RequestView& r, uint16_t port = 8000) {
  return authorize(policies, peer, r, port);
}

TEST(Authorization, NoPoliciesAllows) {
  auto d = check({}, kSleep, request("GET", "/"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, Reason::kNoAllowPolicies);
}

TEST(Authorization, DenyPolicyWinsOverAllow) {
  std::vector<AuthorizationPolicy> ps = {
      policy("foo/allow-all", Action::kAllow, {AuthorizationRule{}}),
      policy("foo/deny-get", Action::kDeny, {to(methodsAndPaths({"GET"}, {}))}),
  };
  auto d = check(ps, kSleep, request("GET", "/ip"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, Reason::kDenyPolicyMatched);
  EXPECT_EQ(d.policy, "foo/deny-get");
  EXPECT_TRUE(check(ps, kSleep, request("POST", "/ip")).allowed);
}

TEST(Authorization, WithAllowPoliciesOnlyMatchingRequestsPass) {
  std::vector<AuthorizationPolicy> ps = {
      policy("foo/httpbin", Action::kAllow, {to(methodsAndPaths({"GET"}, {"/info*"}))}),
  };
  auto ok = check(ps, kSleep, request("GET", "/info/version"));
  EXPECT_TRUE(ok.allowed);
  EXPECT_EQ(ok.policy, "foo/httpbin");
  auto denied = check(ps, kSleep, request("GET", "/admin"));
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, Reason::kNoAllowPolicyMatched);
}

TEST(Authorization, DeniedRequestsGet403WithRbacFlag) {
  EXPECT_EQ(AuthorizationDecision::kDeniedStatus, 403);
  EXPECT_EQ(shortName(AuthorizationDecision::kDeniedFlag), "RBAC");
}

TEST(Authorization, AllowPolicyWithoutRulesAllowsNothing) {
  auto d = check({policy("foo/allow-nothing", Action::kAllow, {})}, kSleep, request("GET", "/"));
  EXPECT_FALSE(d.allowed);
}

TEST(Authorization, EmptyRuleMatchesEverything) {
  EXPECT_TRUE(check({policy("foo/allow-all", Action::kAllow, {AuthorizationRule{}})}, kOther,
                    request("DELETE", "/x"))
                  .allowed);
  EXPECT_FALSE(check({policy("foo/deny-all", Action::kDeny, {AuthorizationRule{}})}, kSleep,
                     request("GET", "/"))
                   .allowed);
}

TEST(Authorization, DenyPolicyWithoutRulesDeniesNothing) {
  EXPECT_TRUE(check({policy("foo/deny", Action::kDeny, {})}, kSleep, request("GET", "/")).allowed);
}

TEST(Authorization, CustomAndAuditPoliciesDoNotDecide) {
  std::vector<AuthorizationPolicy> ps = {
      policy("foo/ext", Action::kCustom, {AuthorizationRule{}}),
      policy("foo/audit", Action::kAudit, {AuthorizationRule{}}),
  };
  auto d = check(ps, kSleep, request("GET", "/"));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, Reason::kNoAllowPolicies);
}

TEST(Authorization, AnyRuleOfAPolicyMayMatch) {
  auto p =
      policy("foo/p", Action::kAllow,
             {to(methodsAndPaths({"GET"}, {"/info*"})), to(methodsAndPaths({"POST"}, {"/data"}))});
  EXPECT_TRUE(check({p}, kSleep, request("POST", "/data")).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("POST", "/info")).allowed);
}

TEST(Authorization, FromToAndWhenMustAllMatch) {
  AuthorizationRule rule{{principals({"cluster.local/ns/default/sa/sleep"})},
                         {methodsAndPaths({"GET"}, {})},
                         {when("request.headers[x-token]", {"admin"})}};
  auto p = policy("foo/p", Action::kAllow, {rule});
  auto r = request("GET", "/");
  r.headers = {{"X-Token", "admin"}};
  EXPECT_TRUE(check({p}, kSleep, r).allowed);
  EXPECT_FALSE(check({p}, kOther, r).allowed) << "wrong principal";
  r.headers = {{"X-Token", "guest"}};
  EXPECT_FALSE(check({p}, kSleep, r).allowed) << "condition fails";
}

TEST(Authorization, AnySourceInFromMayMatch) {
  Source ns;
  ns.namespaces.values = {"test"};
  AuthorizationRule rule{{principals({"cluster.local/ns/default/sa/sleep"}), ns}, {}, {}};
  auto p = policy("foo/p", Action::kAllow, {rule});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/")).allowed);
  EXPECT_TRUE(check({p}, kOther, request("GET", "/")).allowed);
  EXPECT_FALSE(
      check({p}, Peer{"cluster.local/ns/x/sa/y", "x", "1.2.3.4"}, request("GET", "/")).allowed);
}

TEST(Authorization, NotFieldsMatchWhenNoValueMatches) {
  Operation o;
  o.methods.not_values = {"DELETE", "PUT"};
  auto p = policy("foo/deny-writes", Action::kDeny, {to(methodsAndPaths({}, {}))});
  p.rules[0].to[0] = o;
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/")).allowed) << "GET is not DELETE or PUT";
  EXPECT_TRUE(check({p}, kSleep, request("DELETE", "/")).allowed);
}

TEST(Authorization, PositiveAndNotFieldsCombine) {
  Operation o;
  o.paths.values = {"/api/*"};
  o.paths.not_values = {"/api/health"};
  auto p = policy("foo/p", Action::kAllow, {to(o)});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/api/items")).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/api/health")).allowed);
}

TEST(Authorization, PathPrefixSuffixAndPresence) {
  EXPECT_TRUE(istioStringMatches("/foo*", "/foo/bar"));
  EXPECT_TRUE(istioStringMatches("/foo*", "/foo"));
  EXPECT_FALSE(istioStringMatches("/foo*", "/fo"));
  EXPECT_TRUE(istioStringMatches("*.json", "/data/x.json"));
  EXPECT_FALSE(istioStringMatches("*.json", "/data/x.yaml"));
  EXPECT_TRUE(istioStringMatches("*", "/anything"));
  EXPECT_FALSE(istioStringMatches("*", ""));
  EXPECT_TRUE(istioStringMatches("/exact", "/exact"));
  EXPECT_FALSE(istioStringMatches("/exact", "/exact/"));
}

TEST(Authorization, PathIgnoresTheQueryString) {
  auto p = policy("foo/p", Action::kAllow, {to(methodsAndPaths({}, {"/status"}))});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/status?verbose=1")).allowed);
}

TEST(Authorization, PrincipalWildcardsAndSpiffePrefix) {
  auto p = policy("foo/p", Action::kAllow, {from(principals({"cluster.local/ns/default/*"}))});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/")).allowed);
  EXPECT_FALSE(check({p}, kOther, request("GET", "/")).allowed);
  Peer spiffe{"spiffe://cluster.local/ns/default/sa/sleep", "default", "10.1.0.5"};
  EXPECT_TRUE(check({p}, spiffe, request("GET", "/")).allowed);
  auto suffix = policy("foo/s", Action::kAllow, {from(principals({"*/sa/sleep"}))});
  EXPECT_TRUE(check({suffix}, kSleep, request("GET", "/")).allowed);
}

TEST(Authorization, PrincipalPresenceRejectsUnauthenticatedPeers) {
  auto p = policy("foo/mtls-only", Action::kAllow, {from(principals({"*"}))});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/")).allowed);
  EXPECT_FALSE(check({p}, Peer{"", "", "10.9.9.9"}, request("GET", "/")).allowed);
}

TEST(Authorization, NamespaceWildcards) {
  Source s;
  s.namespaces.values = {"team-*"};
  auto p = policy("foo/p", Action::kAllow, {from(s)});
  EXPECT_TRUE(check({p}, Peer{"x", "team-a", "1.1.1.1"}, request("GET", "/")).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/")).allowed);
}

TEST(Authorization, HostsCompareCaseInsensitivelyWithoutPort) {
  Operation o;
  o.hosts.values = {"HTTPBIN.foo"};
  auto p = policy("foo/p", Action::kAllow, {to(o)});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/", "httpbin.FOO:8000")).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/", "other.foo")).allowed);
}

TEST(Authorization, PortsMatchTheDestinationPort) {
  Operation o;
  o.ports.values = {"8000"};
  auto p = policy("foo/p", Action::kAllow, {to(o)});
  EXPECT_TRUE(check({p}, kSleep, request("GET", "/"), 8000).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/"), 9000).allowed);
}

TEST(Authorization, MethodsAreCaseSensitive) {
  auto p = policy("foo/p", Action::kAllow, {to(methodsAndPaths({"GET"}, {}))});
  EXPECT_FALSE(check({p}, kSleep, request("get", "/")).allowed);
}

TEST(Authorization, IpBlocksAndNotIpBlocks) {
  Source s;
  s.ip_blocks = {*CidrBlock::parse("10.1.0.0/16")};
  s.not_ip_blocks = {*CidrBlock::parse("10.1.0.5")};
  auto p = policy("foo/p", Action::kAllow, {from(s)});
  EXPECT_TRUE(check({p}, Peer{"", "", "10.1.2.3"}, request("GET", "/")).allowed);
  EXPECT_FALSE(check({p}, kSleep, request("GET", "/")).allowed) << "10.1.0.5 is excluded";
  EXPECT_FALSE(check({p}, kOther, request("GET", "/")).allowed);
}

TEST(Authorization, ConditionsOnSourceIpPortNamespaceAndPrincipal) {
  auto r = request("GET", "/");
  auto allow = [&](Condition c, const Peer& peer) {
    return check({policy("foo/p", Action::kAllow, {AuthorizationRule{{}, {}, {c}}})}, peer, r)
        .allowed;
  };
  EXPECT_TRUE(allow(when("source.ip", {"10.1.0.0/24"}), kSleep));
  EXPECT_FALSE(allow(when("source.ip", {"10.1.0.0/24"}), kOther));
  EXPECT_TRUE(allow(when("remote.ip", {}, {"192.168.0.0/16"}), kSleep));
  EXPECT_TRUE(allow(when("destination.port", {"8000"}), kSleep));
  EXPECT_FALSE(allow(when("destination.port", {"80"}), kSleep));
  EXPECT_TRUE(allow(when("source.namespace", {"default"}), kSleep));
  EXPECT_TRUE(allow(when("source.principal", {"cluster.local/ns/default/sa/*"}), kSleep));
}

TEST(Authorization, HeaderConditionNotValuesMatchAMissingHeader) {
  auto p = policy("foo/deny-debug", Action::kDeny,
                  {AuthorizationRule{{}, {}, {when("request.headers[x-debug]", {"*"})}}});
  auto r = request("GET", "/");
  EXPECT_TRUE(check({p}, kSleep, r).allowed) << "no header: the presence condition fails";
  r.headers = {{"x-debug", "1"}};
  EXPECT_FALSE(check({p}, kSleep, r).allowed);
  auto q = policy("foo/allow-non-guest", Action::kAllow,
                  {AuthorizationRule{{}, {}, {when("request.headers[x-role]", {}, {"guest"})}}});
  EXPECT_TRUE(check({q}, kSleep, request("GET", "/")).allowed);
}

TEST(AuthorizationConfig, UnsupportedConditionKeyIsAnError) {
  auto c = Condition::create("request.auth.claims[iss]", {"https://accounts.google.com"}, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("request.auth.claims[iss]"), std::string::npos);
}

TEST(AuthorizationConfig, ConditionWithoutValuesIsAnError) {
  EXPECT_FALSE(Condition::create("source.namespace", {}, {}).ok());
}

TEST(AuthorizationConfig, BadIpBlocksAreErrors) {
  EXPECT_FALSE(CidrBlock::parse("10.0.0.0/33").ok());
  EXPECT_FALSE(CidrBlock::parse("10.0.0/8").ok());
  EXPECT_FALSE(CidrBlock::parse("fd00::/129").ok());
  EXPECT_FALSE(CidrBlock::parse("10.0.0.0/").ok());
  EXPECT_FALSE(Condition::create("source.ip", {"not-an-ip"}, {}).ok());
}

TEST(AuthorizationConfig, Ipv6BlocksMatchOnlyIpv6) {
  auto b = CidrBlock::parse("fd00:5::/32");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_TRUE(b->contains("fd00:5::10"));
  EXPECT_FALSE(b->contains("fd01::1"));
  EXPECT_FALSE(b->contains("10.0.0.1"));
  EXPECT_FALSE(b->contains("garbage"));
}

TEST(AuthorizationConfig, PrefixLengthNotOnAByteBoundary) {
  auto b = CidrBlock::parse("192.168.16.0/20");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->contains("192.168.31.255"));
  EXPECT_FALSE(b->contains("192.168.32.0"));
}

}  // namespace
}  // namespace sluice::waypoint
