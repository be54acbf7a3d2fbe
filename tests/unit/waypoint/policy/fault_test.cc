// Fault injection decisions from injected random values.
#include "waypoint/policy/fault.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;

FaultPolicy make(std::optional<DelayFault> d, std::optional<AbortFault> a) {
  auto p = FaultPolicy::create(d, a);
  EXPECT_TRUE(p.ok()) << p.message();
  return *p;
}

TEST(Fault, HundredPercentDelayAlwaysDelays) {
  auto p = make(DelayFault{5s, 100}, std::nullopt);
  auto d = decideFault(p, 123456789, 0);
  ASSERT_TRUE(d.delay);
  EXPECT_EQ(*d.delay, 5s);
  EXPECT_FALSE(d.abort);
  EXPECT_EQ(d.flags.toString(), "DI");
}

TEST(Fault, ZeroPercentNeverFires) {
  auto p = make(DelayFault{5s, 0}, AbortFault{500, std::nullopt, 0});
  for (uint64_t r : {0ull, 1ull, 999999ull}) {
    auto d = decideFault(p, r, r);
    EXPECT_FALSE(d.delay);
    EXPECT_FALSE(d.abort);
    EXPECT_TRUE(d.flags.empty());
  }
}

TEST(Fault, HttpAbortAnswersWithItsStatusAndFI) {
  auto p = make(std::nullopt, AbortFault{503, std::nullopt, 100});
  auto d = decideFault(p, 0, 42);
  ASSERT_TRUE(d.abort);
  EXPECT_EQ(d.abortHttpStatus(), 503);
  EXPECT_EQ(d.flags.toString(), "FI");
}

TEST(Fault, GrpcAbortAnswersHttp200WithGrpcStatus) {
  auto p = make(std::nullopt, AbortFault{0, 14, 100});
  auto d = decideFault(p, 0, 0);
  ASSERT_TRUE(d.abort);
  EXPECT_EQ(d.abortHttpStatus(), 200);
  EXPECT_EQ(d.abort->grpc_status, 14);
}

TEST(Fault, DelayAndAbortAreDecidedIndependently) {
  auto p = make(DelayFault{1s, 50}, AbortFault{500, std::nullopt, 50});
  // 50% is a threshold of 500,000 per million.
  auto both = decideFault(p, 10, 20);
  EXPECT_TRUE(both.delay && both.abort);
  EXPECT_EQ(both.flags.toString(), "DI,FI");
  auto delay_only = decideFault(p, 10, 700000);
  EXPECT_TRUE(delay_only.delay && !delay_only.abort);
  auto abort_only = decideFault(p, 700000, 10);
  EXPECT_TRUE(!abort_only.delay && abort_only.abort);
}

TEST(Fault, FractionalPercentageIsHonoured) {
  EXPECT_TRUE(percentageHit(0.1, 999));  // 0.1% = 1000 per million
  EXPECT_FALSE(percentageHit(0.1, 1000));
  EXPECT_TRUE(percentageHit(0.0001, 0));
  EXPECT_FALSE(percentageHit(0.0001, 1));
}

TEST(Fault, TenPercentAbortWithinBoundsOver10000Requests) {
  auto p = make(std::nullopt, AbortFault{500, std::nullopt, 10});
  std::mt19937_64 rng(99);
  const int n = 10000;
  int aborted = 0;
  for (int i = 0; i < n; ++i) aborted += decideFault(p, rng(), rng()).abort.has_value();
  EXPECT_NEAR(aborted, n * 0.1, 4 * std::sqrt(n * 0.1 * 0.9));
}

TEST(Fault, NoFaultPolicyDoesNothing) {
  auto d = decideFault(make(std::nullopt, std::nullopt), 1, 2);
  EXPECT_FALSE(d.delay || d.abort);
  EXPECT_EQ(d.abortHttpStatus(), 0);
}

TEST(FaultValidation, PercentageOutOfRangeIsRejected) {
  EXPECT_FALSE(FaultPolicy::create(DelayFault{1s, 101}, std::nullopt).ok());
  EXPECT_FALSE(FaultPolicy::create(DelayFault{1s, -1}, std::nullopt).ok());
  EXPECT_FALSE(FaultPolicy::create(std::nullopt, AbortFault{500, std::nullopt, NAN}).ok());
}

TEST(FaultValidation, AbortStatusMustBeAnHttpStatus) {
  auto bad = FaultPolicy::create(std::nullopt, AbortFault{99, std::nullopt, 10});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("httpStatus"), std::string::npos);
  EXPECT_FALSE(FaultPolicy::create(std::nullopt, AbortFault{600, std::nullopt, 10}).ok());
}

TEST(FaultValidation, GrpcStatusMustBeAGrpcCode) {
  EXPECT_FALSE(FaultPolicy::create(std::nullopt, AbortFault{0, 17, 10}).ok());
  EXPECT_TRUE(FaultPolicy::create(std::nullopt, AbortFault{0, 0, 10}).ok());
}

TEST(FaultValidation, NegativeDelayIsRejected) {
  EXPECT_FALSE(FaultPolicy::create(DelayFault{Duration(-5), 10}, std::nullopt).ok());
}

}  // namespace
}  // namespace sluice::waypoint
