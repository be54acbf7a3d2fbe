// Endpoint choice within a destination (DestinationRule `loadBalancer`): round robin, least
// request (power of two choices, Envoy's default), random, and consistent hash (a ring over the
// endpoint addresses; the key from a header, cookie, source IP or query parameter).
//
// Guarantees:
// - pick() never returns an ejected endpoint; with every endpoint ejected (or none) it returns
//   nullopt and the caller answers 503 with flag UH. There is no panic mode (Istio's default
//   minHealthPercent 0 turns Envoy's off).
// - On a retry, endpoints already tried are avoided whenever another available endpoint exists
//   (Istio's previous-hosts retry predicate); only then may a tried one be picked again.
// - Consistent hash: the same key maps to the same endpoint while the endpoint set and their
//   ejections do not change; ejecting an endpoint moves only the keys that mapped to it.
//   A request without the key is balanced at random.
// - Randomness comes from the caller (uniform 64-bit values), so every choice is reproducible.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "waypoint/policy/match.h"

namespace sluice::waypoint {

enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom, kRingHash };

// Where a consistent-hash key comes from (Istio consistentHash: httpHeaderName, httpCookie.name,
// useSourceIp, httpQueryParameterName).
struct HashKeySource {
  enum class Kind { kHeader, kCookie, kSourceIp, kQueryParam };
  Kind kind = Kind::kHeader;
  std::string name;  // header, cookie or query parameter name; unused for kSourceIp
};

// The hash of the request's key, or nullopt when the request does not carry it. A missing cookie
// is not generated here (Istio's cookie-with-ttl case is the proxy's job).
std::optional<uint64_t> hashKey(const HashKeySource& source, const RequestView& request,
                                std::string_view source_ip);

// A stable 64-bit hash (FNV-1a, then a 64-bit finalizer to spread the bits): the same on every
// node and every run, so consistent hashing agrees across waypoint replicas.
uint64_t stableHash(std::string_view data);

struct PickContext {
  std::span<const uint8_t> ejected{};           // 1 = ejected; shorter than endpoints = not ejected
  std::span<const uint32_t> active_requests{};  // least request: in-flight requests per endpoint
  std::span<const size_t> tried{};              // endpoints already tried by this request
  std::optional<uint64_t> hash{};               // ring hash: the request's key
  uint64_t random1 = 0;                         // uniform random values from the caller
  uint64_t random2 = 0;
};

class LoadBalancer {
 public:
  // `addresses` identify the endpoints ("10.0.0.5:8080"); the ring is built from them.
  LoadBalancer(LbPolicy policy, std::vector<std::string> addresses);

  std::optional<size_t> pick(const PickContext& context);
  LbPolicy policy() const { return policy_; }
  size_t size() const { return addresses_.size(); }

  static constexpr size_t kMinRingSize = 1024;  // Envoy's minimum_ring_size default

 private:
  // Endpoints not ejected, minus the tried ones when that leaves any.
  std::span<const size_t> eligible(const PickContext& context);
  bool usable(size_t endpoint, const PickContext& context, bool avoid_tried) const;
  std::optional<size_t> ringLookup(uint64_t hash, const PickContext& context) const;

  LbPolicy policy_;
  std::vector<std::string> addresses_;
  std::vector<std::pair<uint64_t, size_t>> ring_;  // sorted (point, endpoint)
  uint64_t next_ = 0;                              // round robin position
  std::vector<size_t> scratch_;                    // eligible endpoints, reused per pick
};

}  // namespace sluice::waypoint
