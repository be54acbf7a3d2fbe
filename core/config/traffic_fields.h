// Field readers shared by the L7 kinds' decoders (internal to sluice_config): durations,
// percentages, string matches, destinations, header operations, selectors and references.
// Like Field's own readers they report a problem and return a default.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/config/field.h"
#include "core/config/traffic_objects.h"

namespace sluice::config::detail {

// A duration string; `positive` also rejects zero.
std::optional<Duration> readDuration(const Field& field, bool positive = false);
// Istio's Percent message: a mapping {value: 0..100}.
std::optional<double> readPercentage(const Field& field);
// A non-negative 32-bit count or weight, at most `max`.
std::optional<uint32_t> readCount(const Field& field, uint32_t max = UINT32_MAX);
// An HTTP status code 200..599 (or `min`..`max` where the API narrows it).
std::optional<uint16_t> readStatus(const Field& field, uint16_t min = 200, uint16_t max = 599);
// One of `values`, exactly; `fallback` when absent.
std::string readEnum(const Field& field, std::initializer_list<std::string_view> values,
                     std::string_view fallback = "");
// A string that must be present and non-empty.
std::string readRequired(const Field& field);

// Istio StringMatch {exact | prefix | regex}; `allow_presence` admits `{}` (headers, query
// parameters) as StringMatch::Type::kPresent.
std::optional<StringMatch> readStringMatch(const Field& field, bool allow_presence = false);
std::map<std::string, StringMatch> readStringMatchMap(const Field& field);

// Istio Destination {host, subset, port {number}}.
Destination readDestination(const Field& field);
// Istio Headers {request, response}, each {set, add, remove}.
Headers readHeaders(const Field& field);
// {matchLabels}; nullopt when absent or empty (Istio treats both as "no selector").
std::optional<std::map<std::string, std::string>> readSelector(const Field& field);
// IPv4/IPv6 address or CIDR, as AuthorizationPolicy ipBlocks and destinationSubnets take.
bool isIpOrCidr(std::string_view text);
std::vector<std::string> readIpBlocks(const Field& field);

}  // namespace sluice::config::detail
