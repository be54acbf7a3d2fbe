// SpiffeId: a validated workload identity,
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::identity {

// Guarantees (for every SpiffeId made by parse() or forWorkload()): the trust domain is 1..255
// characters of [a-z0-9._-]; namespace and service account are non-empty SPIFFE path segments
// ([A-Za-z0-9._-], not "." or ".."); the whole URI is at most 2048 bytes. str() round-trips
// through parse(). A default-constructed SpiffeId is empty() and exists only so the type can sit
// in containers and aggregates; it is never produced by parsing.
class SpiffeId {
 public:
  static constexpr std::string_view kScheme = "spiffe://";

  SpiffeId() = default;

  // Parses a URI; the error names the part that is wrong and why.
  static Result<SpiffeId> parse(std::string_view uri);
  // Builds the identity of a Kubernetes service account, validating each part.
  static Result<SpiffeId> forWorkload(std::string_view trust_domain, std::string_view ns,
                                      std::string_view sa);

  const std::string& trustDomain() const { return trust_domain_; }
  const std::string& ns() const { return ns_; }
  const std::string& serviceAccount() const { return sa_; }
  bool empty() const { return trust_domain_.empty(); }

  // The URI, e.g. "spiffe://cluster.local/ns/default/sa/bookinfo".
  std::string str() const;

  auto operator<=>(const SpiffeId&) const = default;
  bool operator==(const SpiffeId&) const = default;

 private:
  SpiffeId(std::string trust_domain, std::string ns, std::string sa)
      : trust_domain_(std::move(trust_domain)), ns_(std::move(ns)), sa_(std::move(sa)) {}

  std::string trust_domain_;
  std::string ns_;
  std::string sa_;
};

// Checks a trust domain name on its own (e.g. from configuration); error says which character.
Result<void> validateTrustDomain(std::string_view trust_domain);

std::ostream& operator<<(std::ostream& os, const SpiffeId& id);

}  // namespace sluice::identity

template <>
struct std::hash<sluice::identity::SpiffeId> {
  std::size_t operator()(const sluice::identity::SpiffeId& id) const noexcept {
    std::size_t h = std::hash<std::string>{}(id.trustDomain());
    h = h * 31 + std::hash<std::string>{}(id.ns());
    return h * 31 + std::hash<std::string>{}(id.serviceAccount());
  }
};
