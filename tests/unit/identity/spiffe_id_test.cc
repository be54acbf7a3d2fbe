#include "core/identity/spiffe_id.h"

#include <gtest/gtest.h>

#include <cctype>

#include <set>
#include <string>
#include <unordered_set>

namespace sluice::identity {
namespace {

TEST(SpiffeIdTest, ParsesWorkloadIdentityIntoItsParts) {
  auto id = SpiffeId::parse("spiffe://cluster.local/ns/bookinfo/sa/reviews-v1");
  ASSERT_TRUE(id) << id.message();
  EXPECT_EQ(id->trustDomain(), "cluster.local");
  EXPECT_EQ(id->ns(), "bookinfo");
  EXPECT_EQ(id->serviceAccount(), "reviews-v1");
  EXPECT_FALSE(id->empty());
}

TEST(SpiffeIdTest, RoundTripsThroughStr) {
  for (const char* uri : {"spiffe://cluster.local/ns/default/sa/default",
                          "spiffe://a_b.example-1.org/ns/Team.A/sa/svc_1"}) {
    auto id = SpiffeId::parse(uri);
    ASSERT_TRUE(id) << id.message();
    EXPECT_EQ(id->str(), uri);
    auto again = SpiffeId::parse(id->str());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *id);
  }
}

TEST(SpiffeIdTest, ForWorkloadBuildsTheSameIdAsParsing) {
  auto built = SpiffeId::forWorkload("cluster.local", "shop", "cart");
  ASSERT_TRUE(built) << built.message();
  EXPECT_EQ(built->str(), "spiffe://cluster.local/ns/shop/sa/cart");
  EXPECT_EQ(*built, *SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/cart"));
}

TEST(SpiffeIdTest, ForWorkloadNamesTheBadPart) {
  auto bad_ns = SpiffeId::forWorkload("cluster.local", "", "cart");
  ASSERT_FALSE(bad_ns);
  EXPECT_NE(bad_ns.message().find("namespace is empty"), std::string::npos) << bad_ns.message();

  auto bad_sa = SpiffeId::forWorkload("cluster.local", "shop", "a/b");
  ASSERT_FALSE(bad_sa);
  EXPECT_NE(bad_sa.message().find("service account 'a/b' contains '/'"), std::string::npos)
      << bad_sa.message();

  auto bad_td = SpiffeId::forWorkload("Cluster.Local", "shop", "cart");
  ASSERT_FALSE(bad_td);
  EXPECT_NE(bad_td.message().find("trust domains are lowercase"), std::string::npos)
      << bad_td.message();
}

struct BadId {
  std::string uri;
  std::string expected_reason;
};

class SpiffeIdRejectsTest : public ::testing::TestWithParam<BadId> {};

TEST_P(SpiffeIdRejectsTest, RejectsMalformedIdWithReason) {
  auto id = SpiffeId::parse(GetParam().uri);
  ASSERT_FALSE(id) << "accepted " << GetParam().uri;
  EXPECT_NE(id.message().find(GetParam().expected_reason), std::string::npos)
      << "message: " << id.message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, SpiffeIdRejectsTest,
    ::testing::Values(
        BadId{"", "it is empty"},
        BadId{"cluster.local/ns/a/sa/b", "missing scheme; it must start with 'spiffe://'"},
        BadId{"https://cluster.local/ns/a/sa/b", "scheme is 'https'"},
        BadId{"SPIFFE://cluster.local/ns/a/sa/b", "scheme is 'SPIFFE'"},
        BadId{"spiffe:///ns/a/sa/b", "trust domain is empty"},
        BadId{"spiffe://cluster.local", "path is missing"},
        BadId{"spiffe://cluster.local/", "does not have the form /ns/<namespace>/sa/"},
        BadId{"spiffe://cluster.local/ns/a", "does not have the form"},
        BadId{"spiffe://cluster.local/sa/b/ns/a", "does not have the form"},
        BadId{"spiffe://cluster.local/ns/a/sa/b/", "does not have the form"},
        BadId{"spiffe://cluster.local/ns/a/sa/b/c", "does not have the form"},
        BadId{"spiffe://cluster.local/ns//sa/b", "namespace is empty"},
        BadId{"spiffe://cluster.local/ns/a/sa/", "service account is empty"},
        BadId{"spiffe://cluster.local/ns/../sa/b", "namespace must not be '..'"},
        BadId{"spiffe://cluster.local/ns/a%20b/sa/c", "namespace 'a%20b' contains '%'"},
        BadId{"spiffe://cluster.local/ns/a/sa/b?x=1", "has no query"},
        BadId{"spiffe://cluster.local/ns/a/sa/b#frag", "has no fragment"},
        BadId{"spiffe://Cluster.local/ns/a/sa/b", "trust domains are lowercase"},
        BadId{"spiffe://cluster.local:443/ns/a/sa/b", "a trust domain has no port"},
        BadId{"spiffe://admin@cluster.local/ns/a/sa/b", "a trust domain has no user info"},
        BadId{"spiffe://clu ster/ns/a/sa/b", "contains 0x20"},
        BadId{"spiffe://" + std::string(256, 'a') + "/ns/a/sa/b", "at most 255"},
        BadId{"spiffe://cluster.local/ns/a/sa/" + std::string(2100, 'b'), "at most 2048"}),
    // Test names say which rule was broken: the expected reason, as an identifier.
    [](const ::testing::TestParamInfo<BadId>& info) {
      std::string name;
      for (char c : info.param.expected_reason)
        if (std::isalnum(static_cast<unsigned char>(c))) name += c;
      return name.substr(0, 40) + "_" + std::to_string(info.index);
    });

TEST(SpiffeIdTest, WorksAsOrderedAndHashedKey) {
  auto a = *SpiffeId::parse("spiffe://cluster.local/ns/a/sa/x");
  auto b = *SpiffeId::parse("spiffe://cluster.local/ns/b/sa/x");
  std::set<SpiffeId> ordered{b, a, a};
  std::unordered_set<SpiffeId> hashed{b, a, a};
  EXPECT_EQ(ordered.size(), 2u);
  EXPECT_EQ(*ordered.begin(), a);
  EXPECT_EQ(hashed.size(), 2u);
  EXPECT_TRUE(a < b);
}

TEST(SpiffeIdTest, DefaultConstructedIsEmpty) {
  SpiffeId id;
  EXPECT_TRUE(id.empty());
  EXPECT_EQ(id.str(), "");
}

}  // namespace
}  // namespace sluice::identity
