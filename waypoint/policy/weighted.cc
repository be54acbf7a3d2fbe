#include "waypoint/policy/weighted.h"

#include <algorithm>

namespace sluice::waypoint {

WeightedChoice::WeightedChoice(std::span<const uint32_t> weights) {
  cumulative_.reserve(weights.size());
  uint64_t sum = 0;
  for (uint32_t w : weights) {
    sum += w;
    cumulative_.push_back(sum);
  }
}

std::optional<size_t> WeightedChoice::pick(uint64_t random) const {
  uint64_t sum = total();
  if (sum == 0) return std::nullopt;
  // The bias of a 64-bit modulo over a 32-bit-weight sum is below 2^-31: negligible here.
  uint64_t point = random % sum;
  // The first destination whose cumulative weight exceeds the point; zero weights add nothing
  // to the sum, so upper_bound steps over them.
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), point);
  return static_cast<size_t>(it - cumulative_.begin());
}

std::optional<size_t> pickWeighted(std::span<const uint32_t> weights, uint64_t random) {
  return WeightedChoice(weights).pick(random);
}

}  // namespace sluice::waypoint
