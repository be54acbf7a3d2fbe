// The metadata of an HBONE CONNECT (core/hbone/metadata.h): what ztunnel and the waypoint send
// and what they believe of what a peer sends.
#include "core/hbone/metadata.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::hbone {
namespace {

using boost::asio::ip::make_address;

TEST(HboneMetadata, ForwardedRoundTripsBothFamilies) {
  EXPECT_EQ(formatForwardedFor("198.18.1.10"), "for=\"198.18.1.10\"");
  EXPECT_EQ(parseForwardedFor(formatForwardedFor("198.18.1.10")), make_address("198.18.1.10"));
  EXPECT_EQ(parseForwardedFor(formatForwardedFor("fd00:5::10")), make_address("fd00:5::10"));
  EXPECT_EQ(parseForwardedFor("for=\"[fd00:5::10]\""), make_address("fd00:5::10"));
  EXPECT_EQ(parseForwardedFor("for=198.18.1.10;proto=http"), make_address("198.18.1.10"));
}

TEST(HboneMetadata, AForwardedHeaderThatNamesNoAddressIsIgnored) {
  EXPECT_EQ(parseForwardedFor(""), std::nullopt);
  EXPECT_EQ(parseForwardedFor("for=\"\""), std::nullopt);
  EXPECT_EQ(parseForwardedFor("for=\"evil\"}\""), std::nullopt);
  EXPECT_EQ(parseForwardedFor("by=198.18.1.10"), std::nullopt);
  EXPECT_EQ(parseForwardedFor("for=_hidden"), std::nullopt);
}

TEST(HboneMetadata, BaggageRoundTripsAndIgnoresOtherMembers) {
  const Baggage sent{"shop", "client-7c9b4-abcde", "client", "v1"};
  EXPECT_EQ(formatBaggage(sent),
            "k8s.namespace.name=shop,k8s.pod.name=client-7c9b4-abcde,service.name=client,"
            "service.version=v1");
  EXPECT_EQ(parseBaggage(formatBaggage(sent)), sent);
  EXPECT_EQ(parseBaggage("userId=alice, service.name = client;prop=1,noequals").service_name,
            "client");
}

TEST(HboneMetadata, NewTraceContextsAreValidUniqueAndNotSampled) {
  std::mt19937_64 random(42);
  const auto first = newTraceparent(random), second = newTraceparent(random);
  EXPECT_THAT(first, ::testing::MatchesRegex("00-[0-9a-f]{32}-[0-9a-f]{16}-00"));
  EXPECT_TRUE(isValidTraceparent(first));
  EXPECT_NE(first.substr(3, 32), second.substr(3, 32));
}

TEST(HboneMetadata, MalformedTraceContextsAreRejected) {
  EXPECT_TRUE(isValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(isValidTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(isValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(isValidTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(isValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(isValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));
  EXPECT_FALSE(isValidTraceparent("garbage"));
}

}  // namespace
}  // namespace sluice::hbone
