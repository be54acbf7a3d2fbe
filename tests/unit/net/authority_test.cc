#include "core/net/authority.h"

#include <gtest/gtest.h>

namespace sluice::net {
namespace {

TEST(Authority, AcceptsIpv4AndBracketedIpv6) {
  auto v4 = parseAuthority("198.18.0.2:8080");
  ASSERT_TRUE(v4) << v4.message();
  EXPECT_EQ(v4->address().to_string(), "198.18.0.2");
  EXPECT_EQ(v4->port(), 8080);
  auto v6 = parseAuthority("[fd00:5::2]:443");
  ASSERT_TRUE(v6) << v6.message();
  EXPECT_EQ(v6->address().to_string(), "fd00:5::2");
  EXPECT_EQ(formatAuthority(*v6), "[fd00:5::2]:443");
  EXPECT_EQ(formatAuthority(*v4), "198.18.0.2:8080");
}

TEST(Authority, RejectsWhatIsNotIpAndPort) {
  const char* bad[] = {"",
                       "198.18.0.2",
                       "198.18.0.2:",
                       "198.18.0.2:0",
                       "1.2.3.4:65536",
                       "1.2.3.4:80x",
                       "host.example:80",
                       "fd00:5::2:80",
                       "[fd00:5::2]",
                       "[fd00:5::2:80",
                       "[fd00:5::2]80",
                       "1.2.3.4:-1",
                       "[fe80::1%eth0]:80",
                       "1.2.3.4:+80"};
  for (const char* text : bad) {
    auto parsed = parseAuthority(text);
    EXPECT_FALSE(parsed) << "accepted '" << text << "'";
    if (!parsed) {
      EXPECT_FALSE(parsed.message().empty());
    }
  }
}

TEST(Authority, ExplainsTheProblem) {
  EXPECT_NE(parseAuthority("svc.example:80").message().find("not an IP address"),
            std::string::npos);
  EXPECT_NE(parseAuthority("198.18.0.2:99999").message().find("1..65535"), std::string::npos);
}

}  // namespace
}  // namespace sluice::net
