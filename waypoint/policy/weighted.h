// Weighted destination choice (VirtualService route weights, HTTPRoute backendRef weights).
//
// Guarantees: with a uniform `random`, destination i is chosen with probability
// weight[i] / sum(weights); a zero weight is never chosen; all-zero (or no) weights choose
// nothing, and the caller answers 500 or 503 as its API says. The choice is a pure function of
// the weights and the random value, so tests are deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sluice::waypoint {

// Prefix sums of the weights, built once per route so that a pick is a binary search.
class WeightedChoice {
 public:
  explicit WeightedChoice(std::span<const uint32_t> weights);

  // `random` is a uniform 64-bit integer from the caller's generator.
  std::optional<size_t> pick(uint64_t random) const;
  uint64_t total() const { return cumulative_.empty() ? 0 : cumulative_.back(); }

 private:
  std::vector<uint64_t> cumulative_;  // cumulative_[i] = weight[0] + ... + weight[i]
};

// One-off form of WeightedChoice.
std::optional<size_t> pickWeighted(std::span<const uint32_t> weights, uint64_t random);

}  // namespace sluice::waypoint
