#include "waypoint/policy/weighted.h"

namespace sluice::waypoint {

std::optional<size_t> pickWeighted(std::span<const uint32_t> weights, uint64_t random) {
  // The first destination whose running sum of weights exceeds the point; zero weights add
  // nothing, so they are stepped over. The bias of a 64-bit modulo over a sum of 32-bit weights
  // is below 2^-31: negligible here.
  uint64_t sum = 0;
  for (uint32_t w : weights) sum += w;
  if (sum == 0) return std::nullopt;
  uint64_t point = random % sum;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (point < weights[i]) return i;
    point -= weights[i];
  }
  return std::nullopt;  // not reached: the points stay below the sum
}

}  // namespace sluice::waypoint
