// Request targets as the waypoint judges them (waypoint/policy/request_target.h). The encoded
// slash cases are Envoy's default (path_with_escaped_slashes_action: KEEP_UNCHANGED).
#include "waypoint/policy/request_target.h"

#include <gtest/gtest.h>

namespace sluice::waypoint {
namespace {

std::string normalized(std::string_view target, std::string_view method = "GET") {
  auto out = normalizeRequestTarget(target, method);
  return out ? out->target : "error: " + out.message();
}

TEST(RequestTarget, DotSegmentsAndUnreservedEscapesAreResolved) {
  EXPECT_EQ(normalized("/a/b/../../admin"), "/admin");
  EXPECT_EQ(normalized("/./admin/./users"), "/admin/users");
  EXPECT_EQ(normalized("/%61dmin/%7Euser"), "/admin/~user");
  EXPECT_EQ(normalized("/../../admin"), "/admin");  // never above the root
  EXPECT_EQ(normalized("/admin/."), "/admin/");
  EXPECT_EQ(normalized("/search?q=%61&x=/../1"), "/search?q=%61&x=/../1");  // the query is kept
  EXPECT_EQ(normalized("/x#frag").substr(0, 6), "error:");  // no fragment in a request target
}

TEST(RequestTarget, AnEncodedSlashStaysOneSegment) {
  EXPECT_EQ(normalized("/admin%2fusers"), "/admin%2Fusers");
  EXPECT_EQ(normalized("/a%2F..%2Fadmin"), "/a%2F..%2Fadmin");
}

TEST(RequestTarget, AbsoluteFormGivesItsAuthority) {
  auto out = normalizeRequestTarget("HTTP://API:8080/x/../admin?y", "GET");
  ASSERT_TRUE(out) << out.message();
  EXPECT_EQ(out->target, "/admin?y");
  EXPECT_EQ(out->authority, "api:8080");
  EXPECT_EQ(normalized("http://api"), "/");
}

TEST(RequestTarget, WhatIsNoHttpTargetIsAnError) {
  EXPECT_EQ(normalized("/%zz").substr(0, 6), "error:");
  EXPECT_EQ(normalized("api:80").substr(0, 6), "error:");  // authority-form
  EXPECT_EQ(normalized("ftp://api/x").substr(0, 6), "error:");
  EXPECT_EQ(normalized("http:///x").substr(0, 6), "error:");
  EXPECT_EQ(normalized("*"), "error: request target is neither a path nor an absolute URI");
  EXPECT_EQ(normalized("*", "OPTIONS"), "*");
}

TEST(RequestTarget, ATrailingDotLeavesTheHostName) {
  EXPECT_EQ(canonicalHost("reviews.shop.svc.cluster.local."), "reviews.shop.svc.cluster.local");
  EXPECT_EQ(canonicalHost("api.:8080"), "api:8080");
  EXPECT_EQ(canonicalHost("api"), "api");
  EXPECT_EQ(canonicalHost("[fd00:5::1]:80"), "[fd00:5::1]:80");
  EXPECT_EQ(canonicalHost("."), ".");
}

}  // namespace
}  // namespace sluice::waypoint
