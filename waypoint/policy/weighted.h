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

namespace sluice::waypoint {

// The destination for `random`, a uniform 64-bit integer from the caller's generator. A linear
// scan: routes have a handful of destinations, and a pick allocates nothing.
std::optional<size_t> pickWeighted(std::span<const uint32_t> weights, uint64_t random);

}  // namespace sluice::waypoint
