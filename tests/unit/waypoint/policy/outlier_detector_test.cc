// Outlier detection: consecutive errors, ejection time, max ejection percent. Time is passed in.
#include "waypoint/policy/outlier_detector.h"

#include <gtest/gtest.h>

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kT0 = Clock::time_point() + 100h;

OutlierConfig config(uint32_t consecutive_5xx, uint32_t max_percent = 100) {
  OutlierConfig c;
  c.consecutive_5xx = consecutive_5xx;
  c.base_ejection_time = 30s;
  c.max_ejection_percent = max_percent;
  return c;
}

void fail(OutlierDetector& d, size_t endpoint, int times, Clock::time_point now, int status = 503) {
  for (int i = 0; i < times; ++i) d.reportResponse(endpoint, status, now);
}

TEST(OutlierDetection, DefaultsAreIstios) {
  OutlierConfig c;
  EXPECT_EQ(c.consecutive_5xx, 5u);
  EXPECT_EQ(c.consecutive_gateway_errors, 0u);
  EXPECT_EQ(c.base_ejection_time, 30s);
  EXPECT_EQ(c.max_ejection_percent, 10u);
}

TEST(OutlierDetection, ConsecutiveFiveXxEjectsTheEndpoint) {
  OutlierDetector d(config(3), 4);
  EXPECT_FALSE(d.reportResponse(1, 500, kT0));
  EXPECT_FALSE(d.reportResponse(1, 502, kT0));
  EXPECT_TRUE(d.reportResponse(1, 503, kT0));
  EXPECT_TRUE(d.isEjected(1, kT0));
  EXPECT_FALSE(d.isEjected(0, kT0));
}

TEST(OutlierDetection, SuccessResetsTheCounter) {
  OutlierDetector d(config(3), 4);
  fail(d, 0, 2, kT0);
  d.reportResponse(0, 200, kT0);
  fail(d, 0, 2, kT0);
  EXPECT_FALSE(d.isEjected(0, kT0));
  fail(d, 0, 1, kT0);
  EXPECT_TRUE(d.isEjected(0, kT0));
}

TEST(OutlierDetection, FourXxIsASuccessForOutlierDetection) {
  OutlierDetector d(config(2), 2);
  fail(d, 0, 1, kT0);
  d.reportResponse(0, 404, kT0);
  fail(d, 0, 1, kT0);
  EXPECT_FALSE(d.isEjected(0, kT0));
}

TEST(OutlierDetection, LocalFailuresCountAsFiveXx) {
  OutlierDetector d(config(2), 2);
  d.reportLocalFailure(0, kT0);
  EXPECT_TRUE(d.reportLocalFailure(0, kT0));
}

TEST(OutlierDetection, GatewayErrorDetectorIgnoresOther5xx) {
  OutlierConfig c = config(0);
  c.consecutive_gateway_errors = 2;
  OutlierDetector d(c, 2);
  fail(d, 0, 5, kT0, 500);
  EXPECT_FALSE(d.isEjected(0, kT0)) << "500 is not a gateway error, and 5xx detection is off";
  fail(d, 0, 2, kT0, 504);
  EXPECT_TRUE(d.isEjected(0, kT0));
}

TEST(OutlierDetection, EjectedEndpointReturnsAfterBaseTime) {
  OutlierDetector d(config(1), 3);
  fail(d, 2, 1, kT0);
  EXPECT_TRUE(d.isEjected(2, kT0 + 29s));
  EXPECT_FALSE(d.isEjected(2, kT0 + 30s));
}

TEST(OutlierDetection, RepeatedEjectionLastsLonger) {
  OutlierDetector d(config(1), 3);
  fail(d, 0, 1, kT0);
  auto back = kT0 + 30s;
  fail(d, 0, 1, back);
  EXPECT_EQ(d.timesEjected(0), 2u);
  EXPECT_TRUE(d.isEjected(0, back + 59s));
  EXPECT_FALSE(d.isEjected(0, back + 60s));
}

TEST(OutlierDetection, EjectionTimeIsCappedAtMaxEjectionTime) {
  OutlierConfig c = config(1);
  c.max_ejection_time = 50s;
  OutlierDetector d(c, 2);
  auto t = kT0;
  for (int i = 0; i < 5; ++i) {
    fail(d, 0, 1, t);
    t = *d.ejectedUntil(0);
  }
  EXPECT_EQ(d.timesEjected(0), 5u);
  fail(d, 0, 1, t);
  EXPECT_EQ(*d.ejectedUntil(0), t + 50s);
}

TEST(OutlierDetection, MaxEjectionPercentCapsEjections) {
  OutlierDetector d(config(1, 50), 4);
  EXPECT_TRUE(d.reportResponse(0, 503, kT0));
  EXPECT_TRUE(d.reportResponse(1, 503, kT0));
  EXPECT_FALSE(d.reportResponse(2, 503, kT0)) << "3 of 4 would be 75% > 50%";
  EXPECT_EQ(d.ejectedCount(kT0), 2u);
}

TEST(OutlierDetection, OneEndpointMayBeEjectedEvenWhenThePercentRoundsDown) {
  OutlierDetector d(config(1, 10), 3);  // 10% of 3 endpoints is 0.3
  EXPECT_TRUE(d.reportResponse(0, 503, kT0));
  EXPECT_FALSE(d.reportResponse(1, 503, kT0));
  EXPECT_EQ(d.ejectedCount(kT0), 1u);
}

TEST(OutlierDetection, ZeroMaxEjectionPercentEjectsNothing) {
  OutlierDetector d(config(1, 0), 3);
  EXPECT_FALSE(d.reportResponse(0, 503, kT0));
}

TEST(OutlierDetection, CapacityFreesUpWhenAnEjectionEnds) {
  OutlierDetector d(config(1, 10), 3);
  fail(d, 0, 1, kT0);
  EXPECT_FALSE(d.reportResponse(1, 503, kT0 + 10s));
  EXPECT_TRUE(d.reportResponse(1, 503, kT0 + 31s));
}

TEST(OutlierDetection, ReportsAboutAnEjectedEndpointAreIgnored) {
  OutlierDetector d(config(2), 3);
  fail(d, 0, 2, kT0);
  ASSERT_TRUE(d.isEjected(0, kT0));
  fail(d, 0, 5, kT0 + 1s);
  EXPECT_EQ(d.timesEjected(0), 1u);
  EXPECT_FALSE(d.isEjected(0, kT0 + 30s));
  EXPECT_FALSE(d.reportResponse(0, 503, kT0 + 30s)) << "the count restarted after the ejection";
}

TEST(OutlierDetection, MaskMarksEjectedEndpoints) {
  OutlierDetector d(config(1), 3);
  fail(d, 1, 1, kT0);
  std::vector<uint8_t> mask;
  d.ejectedMask(kT0, mask);
  EXPECT_EQ(mask, (std::vector<uint8_t>{0, 1, 0}));
  d.ejectedMask(kT0 + 30s, mask);
  EXPECT_EQ(mask, (std::vector<uint8_t>{0, 0, 0}));
}

TEST(OutlierDetection, ResizeKeepsExistingState) {
  OutlierDetector d(config(1), 2);
  fail(d, 1, 1, kT0);
  d.resize(5);
  EXPECT_TRUE(d.isEjected(1, kT0));
  EXPECT_EQ(d.size(), 5u);
  EXPECT_FALSE(d.reportResponse(9, 503, kT0)) << "unknown endpoint is ignored";
}

}  // namespace
}  // namespace sluice::waypoint
