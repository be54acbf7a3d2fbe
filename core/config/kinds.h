// The kinds Sluice reads and their decoders (internal to sluice_config).
//
// Adding a kind: write `Object decodeX(const Field& object, ObjectMeta meta)` and add one row
// to kKinds in decoder.cc (plus the type to `Object` and its storage in the snapshot).
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string_view>

#include "core/config/field.h"
#include "core/config/objects.h"

namespace sluice::config::detail {

// Reads everything after metadata (decoded already, namespace defaulted). Problems are
// reported through the Field's context; the returned object is then discarded.
using DecodeFn = Object (*)(const Field& object, ObjectMeta meta);

struct KindInfo {
  std::string_view group;                    // "" for the core API group
  std::array<std::string_view, 3> versions;  // unused slots are empty
  std::string_view kind;
  bool namespaced;
  // Strict kinds are authored by people: unknown fields are rejected, as a typo would
  // otherwise silently change policy. Lenient kinds are produced by Kubernetes, which adds
  // many fields Sluice has no use for.
  bool strict;
  DecodeFn decode;
};

// All kinds, in the order of the table in decoder.cc.
std::span<const KindInfo> kinds();
const KindInfo* findKind(std::string_view kind);

Object decodeNamespace(const Field& object, ObjectMeta meta);
Object decodePod(const Field& object, ObjectMeta meta);
Object decodeService(const Field& object, ObjectMeta meta);
Object decodePeerAuthentication(const Field& object, ObjectMeta meta);
Object decodeAuthorizationPolicy(const Field& object, ObjectMeta meta);
Object decodeVirtualService(const Field& object, ObjectMeta meta);
Object decodeDestinationRule(const Field& object, ObjectMeta meta);
Object decodeGateway(const Field& object, ObjectMeta meta);
Object decodeHttpRoute(const Field& object, ObjectMeta meta);

// Shared field readers.
std::optional<boost::asio::ip::address> readIp(const Field& field);
// RFC 1123 label (namespaces, service and port names): [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63.
bool isDnsLabel(std::string_view name);
// RFC 1123 subdomain (most object names): dot-separated labels, <= 253.
bool isDnsSubdomain(std::string_view name);
// IANA service name (container port names, named targetPorts): <= 15 of [a-z0-9-], at least
// one letter, no leading, trailing or doubled '-'.
bool isPortName(std::string_view name);
// Reads a name-like string and checks it with `valid`, reporting `what` it must be.
std::string readName(const Field& field, bool (*valid)(std::string_view), std::string_view what,
                     std::string_view fallback = "");

}  // namespace sluice::config::detail
