#include "core/config/objects.h"

#include <type_traits>

namespace sluice::config {

std::string_view toString(MtlsMode mode) {
  switch (mode) {
    case MtlsMode::kUnset:
      return "UNSET";
    case MtlsMode::kDisable:
      return "DISABLE";
    case MtlsMode::kPermissive:
      return "PERMISSIVE";
    case MtlsMode::kStrict:
      return "STRICT";
  }
  return "UNSET";
}

std::optional<MtlsMode> parseMtlsMode(std::string_view text) {
  for (MtlsMode mode :
       {MtlsMode::kUnset, MtlsMode::kDisable, MtlsMode::kPermissive, MtlsMode::kStrict}) {
    if (toString(mode) == text) return mode;
  }
  return std::nullopt;
}

std::string_view kindOf(const Object& object) {
  return std::visit(
      [](const auto& value) -> std::string_view {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, Namespace>) {
          return "Namespace";
        } else if constexpr (std::is_same_v<T, Pod>) {
          return "Pod";
        } else if constexpr (std::is_same_v<T, Service>) {
          return "Service";
        } else if constexpr (std::is_same_v<T, PeerAuthentication>) {
          return "PeerAuthentication";
        } else if constexpr (std::is_same_v<T, AuthorizationPolicy>) {
          return "AuthorizationPolicy";
        } else if constexpr (std::is_same_v<T, VirtualService>) {
          return "VirtualService";
        } else if constexpr (std::is_same_v<T, DestinationRule>) {
          return "DestinationRule";
        } else if constexpr (std::is_same_v<T, Gateway>) {
          return "Gateway";
        } else {
          static_assert(std::is_same_v<T, HTTPRoute>, "name the new kind here");
          return "HTTPRoute";
        }
      },
      object);
}

const ObjectMeta& metaOf(const Object& object) {
  return std::visit([](const auto& value) -> const ObjectMeta& { return value.meta; }, object);
}

}  // namespace sluice::config
