// Route matching: string matchers, headers, query parameters, Istio order, Gateway precedence.
#include "waypoint/policy/match.h"

#include <gtest/gtest.h>

namespace sluice::waypoint {
namespace {

using Kind = StringMatcher::Kind;

RequestView get(std::string_view target) {
  RequestView r;
  r.method = "GET";
  r.scheme = "http";
  r.authority = "api-server:8080";
  r.setTarget(target);
  return r;
}

StringMatcher regex(std::string pattern, bool ignore_case = false) {
  auto m = StringMatcher::create(Kind::kRegex, std::move(pattern), ignore_case);
  EXPECT_TRUE(m.ok()) << m.message();
  return std::move(m).value();
}

ValueMatch headerEquals(std::string name, std::string value) {
  return {std::move(name), ValueMatch::Mode::kValue, StringMatcher::exact(std::move(value)), false};
}

Route route(std::string name, std::vector<RouteMatch> matches, size_t action) {
  return Route{std::move(name), std::move(matches), action};
}

RouteMatch pathMatch(StringMatcher m) {
  RouteMatch match;
  match.path = std::move(m);
  return match;
}

TEST(StringMatch, ExactMatchesOnlyTheWholeString) {
  auto m = StringMatcher::exact("/login");
  EXPECT_TRUE(m.matches("/login"));
  EXPECT_FALSE(m.matches("/login/"));
  EXPECT_FALSE(m.matches("/LOGIN"));
}

TEST(StringMatch, IgnoreCaseExactAndPrefix) {
  EXPECT_TRUE(StringMatcher::exact("/Login", true).matches("/lOGIN"));
  EXPECT_TRUE(StringMatcher::prefix("/API", true).matches("/api/v1"));
  EXPECT_FALSE(StringMatcher::prefix("/API").matches("/api/v1"));
}

TEST(StringMatch, IstioPrefixIsAPlainStringPrefix) {
  auto m = StringMatcher::prefix("/foo");
  EXPECT_TRUE(m.matches("/foobar"));
  EXPECT_TRUE(m.matches("/foo/bar"));
  EXPECT_FALSE(m.matches("/fo"));
}

TEST(StringMatch, GatewayPathPrefixMatchesWholeSegmentsOnly) {
  auto m = StringMatcher::pathPrefix("/foo");
  EXPECT_TRUE(m.matches("/foo"));
  EXPECT_TRUE(m.matches("/foo/"));
  EXPECT_TRUE(m.matches("/foo/bar"));
  EXPECT_FALSE(m.matches("/foobar"));
}

TEST(StringMatch, GatewayPathPrefixIgnoresTrailingSlashAndSlashMatchesEverything) {
  EXPECT_TRUE(StringMatcher::pathPrefix("/foo/").matches("/foo"));
  EXPECT_TRUE(StringMatcher::pathPrefix("/").matches("/anything/at/all"));
}

TEST(StringMatch, RegexIsAFullMatch) {
  auto m = regex("/users/[0-9]+");
  EXPECT_TRUE(m.matches("/users/42"));
  EXPECT_FALSE(m.matches("/users/42/orders"));
  EXPECT_FALSE(m.matches("x/users/42"));
}

TEST(StringMatch, RegexIgnoreCase) {
  EXPECT_TRUE(regex("/v[0-9]/ITEMS", true).matches("/V2/items"));
}

TEST(StringMatch, InvalidRegexIsAnErrorNamingThePattern) {
  auto m = StringMatcher::create(Kind::kRegex, "/a(b");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("/a(b"), std::string::npos);
}

TEST(StringMatch, BackreferencesAreRejectedAsRe2DoesNotSupportThem) {
  EXPECT_FALSE(StringMatcher::create(Kind::kRegex, "(a)\\1").ok());
}

TEST(StringMatch, CopiedMatcherStillMatchesRegex) {
  auto original = regex("a+b");
  StringMatcher copy = original;
  EXPECT_TRUE(copy.matches("aaab"));
}

TEST(RequestViewTest, TargetSplitsIntoPathAndQuery) {
  auto r = get("/search?q=mesh&page=2#frag");
  EXPECT_EQ(r.path, "/search");
  EXPECT_EQ(r.queryParam("q"), "mesh");
  EXPECT_EQ(r.queryParam("page"), "2");
  EXPECT_FALSE(r.queryParam("missing"));
}

TEST(RequestViewTest, QueryParamWithoutValueIsPresentAndEmpty) {
  auto r = get("/x?debug&a=1");
  ASSERT_TRUE(r.queryParam("debug"));
  EXPECT_EQ(*r.queryParam("debug"), "");
}

TEST(RequestViewTest, HeaderNamesAreCaseInsensitive) {
  auto r = get("/");
  r.headers = {{"X-User", "alice"}};
  EXPECT_EQ(r.header("x-user"), "alice");
  EXPECT_EQ(r.header("X-USER"), "alice");
}

TEST(RequestViewTest, HostDropsThePortButKeepsIpv6Brackets) {
  RequestView r;
  r.authority = "api:8080";
  EXPECT_EQ(r.host(), "api");
  r.authority = "[fd00::1]:443";
  EXPECT_EQ(r.host(), "[fd00::1]");
  r.authority = "api";
  EXPECT_EQ(r.host(), "api");
}

TEST(RouteMatchTest, AllPartsMustMatch) {
  RouteMatch m = pathMatch(StringMatcher::prefix("/api"));
  m.method = StringMatcher::exact("POST");
  m.headers.push_back(headerEquals("x-env", "staging"));
  auto r = get("/api/items");
  r.headers = {{"X-Env", "staging"}};
  EXPECT_FALSE(m.matches(r)) << "method differs";
  r.method = "POST";
  EXPECT_TRUE(m.matches(r));
  r.headers = {{"X-Env", "prod"}};
  EXPECT_FALSE(m.matches(r)) << "header value differs";
}

TEST(RouteMatchTest, HeaderValuesAreCaseSensitiveUnlessIgnoreCase) {
  RouteMatch m;
  m.headers.push_back(headerEquals("x-env", "Staging"));
  auto r = get("/");
  r.headers = {{"x-env", "staging"}};
  EXPECT_FALSE(m.matches(r));
  m.headers[0].value = StringMatcher::exact("Staging", true);
  EXPECT_TRUE(m.matches(r));
}

TEST(RouteMatchTest, HeaderPresentAndAbsent) {
  RouteMatch present;
  present.headers.push_back({"x-canary", ValueMatch::Mode::kPresent, std::nullopt, false});
  RouteMatch absent;
  absent.headers.push_back({"x-canary", ValueMatch::Mode::kAbsent, std::nullopt, false});
  auto with = get("/");
  with.headers = {{"X-Canary", ""}};
  auto without = get("/");
  EXPECT_TRUE(present.matches(with));
  EXPECT_FALSE(present.matches(without));
  EXPECT_FALSE(absent.matches(with));
  EXPECT_TRUE(absent.matches(without));
}

TEST(RouteMatchTest, InvertedHeaderMatchAlsoMatchesAMissingHeader) {
  RouteMatch m;
  ValueMatch v = headerEquals("x-env", "prod");
  v.invert = true;
  m.headers.push_back(v);
  auto r = get("/");
  EXPECT_TRUE(m.matches(r));
  r.headers = {{"x-env", "prod"}};
  EXPECT_FALSE(m.matches(r));
  r.headers = {{"x-env", "dev"}};
  EXPECT_TRUE(m.matches(r));
}

TEST(RouteMatchTest, QueryParamExactAndRegex) {
  RouteMatch m;
  m.query_params.push_back(
      {"version", ValueMatch::Mode::kValue, StringMatcher::exact("v2"), false});
  m.query_params.push_back({"id", ValueMatch::Mode::kValue, regex("[0-9]+"), false});
  EXPECT_TRUE(m.matches(get("/x?version=v2&id=17")));
  EXPECT_FALSE(m.matches(get("/x?version=v2&id=abc")));
  EXPECT_FALSE(m.matches(get("/x?id=17")));
}

TEST(RouteMatchTest, AuthorityIsMatchedWithoutPort) {
  RouteMatch m;
  m.authority = StringMatcher::exact("api-server");
  EXPECT_TRUE(m.matches(get("/")));
}

TEST(RouteMatchTest, PortMustEqualTheListenerPort) {
  RouteMatch m;
  m.port = 8080;
  EXPECT_TRUE(m.matches(get("/"), 8080));
  EXPECT_FALSE(m.matches(get("/"), 9090));
  EXPECT_FALSE(m.matches(get("/")));
}

TEST(RouteMatchTest, EmptyMatchMatchesEverything) {
  EXPECT_TRUE(RouteMatch{}.matches(get("/whatever?x=1")));
}

TEST(IstioRouteOrder, FirstMatchingRouteWinsEvenIfALaterOneIsMoreSpecific) {
  auto table = RouteTable::firstMatch({
      route("catch-all-api", {pathMatch(StringMatcher::prefix("/api"))}, 0),
      route("exact-login", {pathMatch(StringMatcher::exact("/api/login"))}, 1),
  });
  auto s = table.select(get("/api/login"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->route->name, "catch-all-api");
}

TEST(IstioRouteOrder, RouteWithSeveralMatchesIsTheirOr) {
  auto table = RouteTable::firstMatch({
      route("reviews",
            {pathMatch(StringMatcher::exact("/a")), pathMatch(StringMatcher::exact("/b"))}, 7),
  });
  auto s = table.select(get("/b"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->route->action, 7u);
  EXPECT_EQ(s->match_index, 1u);
}

TEST(IstioRouteOrder, RouteWithoutMatchesCatchesEverythingAfterEarlierRoutes) {
  auto table = RouteTable::firstMatch({
      route("v2-for-jason", {[] {
              RouteMatch m;
              m.headers.push_back(headerEquals("end-user", "jason"));
              return m;
            }()},
            1),
      route("default", {}, 0),
  });
  auto jason = get("/");
  jason.headers = {{"end-user", "jason"}};
  EXPECT_EQ(table.select(jason)->route->name, "v2-for-jason");
  EXPECT_EQ(table.select(get("/"))->route->name, "default");
}

TEST(IstioRouteOrder, NoMatchingRouteSelectsNothing) {
  auto table = RouteTable::firstMatch({route("a", {pathMatch(StringMatcher::exact("/a"))}, 0)});
  EXPECT_FALSE(table.select(get("/b")));
}

TEST(GatewayPrecedence, ExactPathBeatsPrefixWrittenEarlier) {
  auto table = RouteTable::gatewayPrecedence({
      route("prefix", {pathMatch(StringMatcher::pathPrefix("/api"))}, 0),
      route("exact", {pathMatch(StringMatcher::exact("/api/login"))}, 1),
  });
  EXPECT_EQ(table.select(get("/api/login"))->route->name, "exact");
  EXPECT_EQ(table.select(get("/api/other"))->route->name, "prefix");
}

TEST(GatewayPrecedence, LongestPrefixWins) {
  auto table = RouteTable::gatewayPrecedence({
      route("root", {pathMatch(StringMatcher::pathPrefix("/"))}, 0),
      route("api", {pathMatch(StringMatcher::pathPrefix("/api"))}, 1),
      route("api-v1", {pathMatch(StringMatcher::pathPrefix("/api/v1"))}, 2),
  });
  EXPECT_EQ(table.select(get("/api/v1/users"))->route->name, "api-v1");
  EXPECT_EQ(table.select(get("/api/v2"))->route->name, "api");
  EXPECT_EQ(table.select(get("/about"))->route->name, "root");
}

TEST(GatewayPrecedence, MethodMatchBeatsHeadersWhenPathsTie) {
  RouteMatch by_headers = pathMatch(StringMatcher::pathPrefix("/"));
  by_headers.headers.push_back(headerEquals("version", "four"));
  RouteMatch by_method = pathMatch(StringMatcher::pathPrefix("/"));
  by_method.method = StringMatcher::exact("PATCH");
  auto table = RouteTable::gatewayPrecedence(
      {route("headers", {by_headers}, 0), route("method", {by_method}, 1)});
  auto r = get("/");
  r.method = "PATCH";
  r.headers = {{"version", "four"}};
  EXPECT_EQ(table.select(r)->route->name, "method");
}

TEST(GatewayPrecedence, MostHeadersThenMostQueryParamsWin) {
  RouteMatch one_header;
  one_header.headers.push_back(headerEquals("a", "1"));
  RouteMatch two_headers = one_header;
  two_headers.headers.push_back(headerEquals("b", "2"));
  RouteMatch two_headers_one_query = two_headers;
  two_headers_one_query.query_params.push_back(
      {"q", ValueMatch::Mode::kValue, StringMatcher::exact("x"), false});
  auto table =
      RouteTable::gatewayPrecedence({route("one", {one_header}, 0), route("two", {two_headers}, 1),
                                     route("two+q", {two_headers_one_query}, 2)});
  auto r = get("/?q=x");
  r.headers = {{"a", "1"}, {"b", "2"}};
  EXPECT_EQ(table.select(r)->route->name, "two+q");
  r.setTarget("/");
  EXPECT_EQ(table.select(r)->route->name, "two");
  r.headers = {{"a", "1"}};
  EXPECT_EQ(table.select(r)->route->name, "one");
}

TEST(GatewayPrecedence, TiesKeepTheCallersOrder) {
  auto table = RouteTable::gatewayPrecedence({
      route("older", {pathMatch(StringMatcher::pathPrefix("/x"))}, 0),
      route("newer", {pathMatch(StringMatcher::pathPrefix("/x"))}, 1),
  });
  EXPECT_EQ(table.select(get("/x"))->route->name, "older");
}

TEST(GatewayPrecedence, EachMatchOfARuleIsRankedOnItsOwn) {
  // Rule "mixed" has a short prefix and an exact match; the exact one outranks "long-prefix".
  auto table = RouteTable::gatewayPrecedence({
      route("long-prefix", {pathMatch(StringMatcher::pathPrefix("/shop/cart"))}, 0),
      route("mixed",
            {pathMatch(StringMatcher::pathPrefix("/a")),
             pathMatch(StringMatcher::exact("/shop/cart/checkout"))},
            1),
  });
  auto s = table.select(get("/shop/cart/checkout"));
  EXPECT_EQ(s->route->name, "mixed");
  EXPECT_EQ(s->match_index, 1u);
  EXPECT_EQ(table.select(get("/shop/cart/items"))->route->name, "long-prefix");
}

TEST(GatewayPrecedence, RegexPathRanksAfterPrefixes) {
  auto table = RouteTable::gatewayPrecedence({
      route("regex", {pathMatch(regex("/api/.*"))}, 0),
      route("prefix", {pathMatch(StringMatcher::pathPrefix("/api"))}, 1),
  });
  EXPECT_EQ(table.select(get("/api/x"))->route->name, "prefix");
}

}  // namespace
}  // namespace sluice::waypoint
