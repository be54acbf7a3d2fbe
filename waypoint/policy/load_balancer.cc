#include "waypoint/policy/load_balancer.h"

#include <algorithm>

namespace sluice::waypoint {
namespace {

bool contains(std::span<const size_t> set, size_t value) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

std::optional<std::string_view> cookie(const RequestView& request, std::string_view name) {
  for (const auto& h : request.headers) {
    if (!equalsIgnoreCase(h.name, "cookie")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

uint64_t stableHash(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  // Finalizer (as in MurmurHash3's fmix64) so that nearby inputs land far apart on the ring.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::optional<uint64_t> hashKey(const HashKeySource& source, const RequestView& request,
                                std::string_view source_ip) {
  std::optional<std::string_view> key;
  switch (source.kind) {
    case HashKeySource::Kind::kHeader:
      key = request.header(source.name);
      break;
    case HashKeySource::Kind::kCookie:
      key = cookie(request, source.name);
      break;
    case HashKeySource::Kind::kSourceIp:
      if (!source_ip.empty()) key = source_ip;
      break;
    case HashKeySource::Kind::kQueryParam:
      key = request.queryParam(source.name);
      break;
  }
  if (!key) return std::nullopt;
  return stableHash(*key);
}

LoadBalancer::LoadBalancer(LbPolicy policy, std::vector<std::string> addresses)
    : policy_(policy), addresses_(std::move(addresses)) {
  if (policy_ != LbPolicy::kRingHash || addresses_.empty()) return;
  size_t per_endpoint = (kMinRingSize + addresses_.size() - 1) / addresses_.size();
  ring_.reserve(per_endpoint * addresses_.size());
  for (size_t e = 0; e < addresses_.size(); ++e)
    for (size_t i = 0; i < per_endpoint; ++i)
      ring_.emplace_back(stableHash(addresses_[e] + "_" + std::to_string(i)), e);
  std::sort(ring_.begin(), ring_.end());
}

bool LoadBalancer::usable(size_t endpoint, const PickContext& context, bool avoid_tried) const {
  if (endpoint < context.ejected.size() && context.ejected[endpoint]) return false;
  return !(avoid_tried && contains(context.tried, endpoint));
}

std::span<const size_t> LoadBalancer::eligible(const PickContext& context) {
  for (bool avoid_tried : {true, false}) {
    scratch_.clear();
    for (size_t e = 0; e < addresses_.size(); ++e)
      if (usable(e, context, avoid_tried)) scratch_.push_back(e);
    if (!scratch_.empty() || context.tried.empty()) break;
  }
  return scratch_;
}

std::optional<size_t> LoadBalancer::ringLookup(uint64_t hash, const PickContext& context) const {
  auto start = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(hash, size_t{0}));
  for (bool avoid_tried : {true, false}) {
    // Walk clockwise from the key's point to the first usable endpoint.
    for (size_t step = 0; step < ring_.size(); ++step) {
      size_t index = (static_cast<size_t>(start - ring_.begin()) + step) % ring_.size();
      size_t endpoint = ring_[index].second;
      if (usable(endpoint, context, avoid_tried)) return endpoint;
    }
    if (context.tried.empty()) break;
  }
  return std::nullopt;
}

std::optional<size_t> LoadBalancer::pick(const PickContext& context) {
  if (policy_ == LbPolicy::kRingHash && context.hash) return ringLookup(*context.hash, context);
  auto candidates = eligible(context);
  if (candidates.empty()) return std::nullopt;
  switch (policy_) {
    case LbPolicy::kRoundRobin: {
      // The next eligible endpoint at or after the rotating position.
      size_t n = addresses_.size();
      for (size_t step = 0; step < n; ++step) {
        size_t e = (next_ + step) % n;
        if (std::binary_search(candidates.begin(), candidates.end(), e)) {
          next_ = e + 1;
          return e;
        }
      }
      return std::nullopt;
    }
    case LbPolicy::kLeastRequest: {
      size_t a = candidates[context.random1 % candidates.size()];
      size_t b = candidates[context.random2 % candidates.size()];
      auto load = [&context](size_t e) {
        return e < context.active_requests.size() ? context.active_requests[e] : 0u;
      };
      return load(b) < load(a) ? b : a;
    }
    case LbPolicy::kRandom:
    case LbPolicy::kRingHash:  // no key: random, as Envoy does
      return candidates[context.random1 % candidates.size()];
  }
  return std::nullopt;
}

}  // namespace sluice::waypoint
