// ObjectMeta: what every configuration object carries (see objects.h).
#pragma once

#include <map>
#include <string>
#include <tuple>

namespace sluice::config {

struct ObjectMeta {
  std::string name;
  std::string ns;  // empty for cluster-scoped kinds
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string uid;
  // RFC 3339 in UTC as the API server writes it ("2026-12-02T21:58:44Z"), so text order is time
  // order; empty in hand-written files.
  std::string creation_timestamp;
};

// Istio's precedence among objects that compete for one thing (a host's VirtualService, the
// order DestinationRules merge in): the oldest first, then by name, then by namespace.
inline bool olderThan(const ObjectMeta& a, const ObjectMeta& b) {
  return std::tie(a.creation_timestamp, a.name, a.ns) <
         std::tie(b.creation_timestamp, b.name, b.ns);
}

}  // namespace sluice::config
