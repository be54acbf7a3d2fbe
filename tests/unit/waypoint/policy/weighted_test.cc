// Weighted destination choice, deterministic and statistical.
#include "waypoint/policy/weighted.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

namespace sluice::waypoint {
namespace {

TEST(Weighted, PointsMapToDestinationsInProportion) {
  std::array<uint32_t, 2> w{90, 10};
  EXPECT_EQ(pickWeighted(w, 0), 0u);
  EXPECT_EQ(pickWeighted(w, 89), 0u);
  EXPECT_EQ(pickWeighted(w, 90), 1u);
  EXPECT_EQ(pickWeighted(w, 99), 1u);
  EXPECT_EQ(pickWeighted(w, 100), 0u) << "wraps modulo the total";
}

TEST(Weighted, ZeroWeightIsNeverPicked) {
  std::array<uint32_t, 3> w{0, 5, 0};
  for (uint64_t r = 0; r < 50; ++r) EXPECT_EQ(pickWeighted(w, r), 1u);
}

TEST(Weighted, AllZeroWeightsPickNothing) {
  std::array<uint32_t, 2> w{0, 0};
  EXPECT_FALSE(pickWeighted(w, 7));
}

TEST(Weighted, NoDestinationsPickNothing) {
  EXPECT_FALSE(pickWeighted(std::span<const uint32_t>{}, 1));
}

TEST(Weighted, SingleDestinationTakesEverything) {
  std::array<uint32_t, 1> w{1};
  EXPECT_EQ(pickWeighted(w, ~uint64_t{0}), 0u);
}

TEST(Weighted, LargeWeightsDoNotOverflow) {
  std::array<uint32_t, 3> w{UINT32_MAX, UINT32_MAX, 1};
  // The sum is 2 * UINT32_MAX + 1: the last point of it falls on the last destination.
  EXPECT_EQ(pickWeighted(w, 2ull * UINT32_MAX), 2u);
  EXPECT_EQ(pickWeighted(w, 2ull * UINT32_MAX + 1), 0u);
}

// Over n picks at p = 0.1, the count of the 10% side is Binomial(n, p): mean np, standard
// deviation sqrt(np(1-p)). Four standard deviations bound a false failure at about 6e-5, and the
// seed is fixed, so the test is deterministic anyway.
TEST(Weighted, NinetyTenSplitWithinBoundsOver2000Picks) {
  std::array<uint32_t, 2> w{90, 10};
  std::mt19937_64 rng(20261201);
  const int n = 2000;
  int v2 = 0;
  for (int i = 0; i < n; ++i) v2 += pickWeighted(w, rng()) == 1u;
  const double mean = n * 0.1, sd = std::sqrt(n * 0.1 * 0.9);
  EXPECT_NEAR(v2, mean, 4 * sd) << "v2 got " << v2 << " of " << n;
}

TEST(Weighted, ThreeWaySplitWithinBoundsForEveryDestination) {
  std::array<uint32_t, 3> w{50, 30, 20};
  std::mt19937_64 rng(7);
  const int n = 10000;
  std::array<int, 3> counts{};
  for (int i = 0; i < n; ++i) ++counts[*pickWeighted(w, rng())];
  for (size_t i = 0; i < w.size(); ++i) {
    double p = w[i] / 100.0;
    EXPECT_NEAR(counts[i], n * p, 4 * std::sqrt(n * p * (1 - p))) << "destination " << i;
  }
}

}  // namespace
}  // namespace sluice::waypoint
