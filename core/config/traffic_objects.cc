#include "core/config/traffic_objects.h"

#include <array>

namespace sluice::config {
namespace {

// Go's duration units, which Istio and the Gateway API accept.
struct Unit {
  std::string_view suffix;
  int64_t nanoseconds;
};
constexpr std::array<Unit, 8> kUnits = {{
    {"ns", 1},
    {"us", 1'000},
    {"\u00b5s", 1'000},  // micro sign
    {"\u03bcs", 1'000},  // Greek mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
}};

// Ten thousand hours is longer than any timeout anyone means and keeps the arithmetic exact.
constexpr __int128 kMaxNanoseconds = static_cast<__int128>(10'000) * 3'600'000'000'000;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<Duration> parseDuration(std::string_view text) {
  if (text == "0") return Duration{0};
  if (text.empty()) return std::nullopt;
  __int128 total = 0;
  while (!text.empty()) {
    size_t i = 0;
    __int128 whole = 0;
    size_t whole_digits = 0;
    while (i < text.size() && isDigit(text[i])) {
      if (++whole_digits > 12) return std::nullopt;
      whole = whole * 10 + (text[i++] - '0');
    }
    __int128 fraction = 0;
    __int128 scale = 1;
    size_t fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && isDigit(text[i])) {
        if (++fraction_digits > 12) return std::nullopt;
        fraction = fraction * 10 + (text[i++] - '0');
        scale *= 10;
      }
    }
    if (whole_digits == 0 && fraction_digits == 0) return std::nullopt;
    text.remove_prefix(i);
    // The longest suffix that fits, so that "ms" is not read as "m" followed by garbage.
    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (text.starts_with(candidate.suffix) &&
          (unit == nullptr || candidate.suffix.size() > unit->suffix.size()))
        unit = &candidate;
    }
    if (unit == nullptr) return std::nullopt;
    text.remove_prefix(unit->suffix.size());
    __int128 part = fraction * unit->nanoseconds;
    if (part % scale != 0) return std::nullopt;  // finer than a nanosecond
    total += whole * unit->nanoseconds + part / scale;
    if (total > kMaxNanoseconds) return std::nullopt;
  }
  if (total % 1'000'000 != 0) return std::nullopt;
  return Duration{static_cast<int64_t>(total / 1'000'000)};
}

std::string formatDuration(Duration duration) {
  int64_t ms = duration.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string_view toString(StringMatch::Type type) {
  switch (type) {
    case StringMatch::Type::kExact:
      return "exact";
    case StringMatch::Type::kPrefix:
      return "prefix";
    case StringMatch::Type::kRegex:
      return "regex";
    case StringMatch::Type::kPresent:
      return "present";
  }
  return "exact";
}

std::string_view toString(LoadBalancer simple) {
  switch (simple) {
    case LoadBalancer::kUnspecified:
      return "UNSPECIFIED";
    case LoadBalancer::kRoundRobin:
      return "ROUND_ROBIN";
    case LoadBalancer::kLeastRequest:
      return "LEAST_REQUEST";
    case LoadBalancer::kRandom:
      return "RANDOM";
    case LoadBalancer::kPassthrough:
      return "PASSTHROUGH";
  }
  return "UNSPECIFIED";
}

std::optional<LoadBalancer> parseLoadBalancer(std::string_view text) {
  if (text == "LEAST_CONN") return LoadBalancer::kLeastRequest;
  for (LoadBalancer simple :
       {LoadBalancer::kUnspecified, LoadBalancer::kRoundRobin, LoadBalancer::kLeastRequest,
        LoadBalancer::kRandom, LoadBalancer::kPassthrough}) {
    if (toString(simple) == text) return simple;
  }
  return std::nullopt;
}

std::string_view toString(AuthorizationAction action) {
  switch (action) {
    case AuthorizationAction::kAllow:
      return "ALLOW";
    case AuthorizationAction::kDeny:
      return "DENY";
    case AuthorizationAction::kAudit:
      return "AUDIT";
    case AuthorizationAction::kCustom:
      return "CUSTOM";
  }
  return "ALLOW";
}

std::optional<AuthorizationAction> parseAuthorizationAction(std::string_view text) {
  for (AuthorizationAction action : {AuthorizationAction::kAllow, AuthorizationAction::kDeny,
                                     AuthorizationAction::kAudit, AuthorizationAction::kCustom}) {
    if (toString(action) == text) return action;
  }
  return std::nullopt;
}

std::string_view toString(GatewayMatchType type) {
  switch (type) {
    case GatewayMatchType::kExact:
      return "Exact";
    case GatewayMatchType::kPathPrefix:
      return "PathPrefix";
    case GatewayMatchType::kRegularExpression:
      return "RegularExpression";
  }
  return "Exact";
}

std::string_view toString(HttpRouteFilter::Type type) {
  using Type = HttpRouteFilter::Type;
  switch (type) {
    case Type::kRequestHeaderModifier:
      return "RequestHeaderModifier";
    case Type::kResponseHeaderModifier:
      return "ResponseHeaderModifier";
    case Type::kRequestRedirect:
      return "RequestRedirect";
    case Type::kUrlRewrite:
      return "URLRewrite";
    case Type::kRequestMirror:
      return "RequestMirror";
    case Type::kExtensionRef:
      return "ExtensionRef";
  }
  return "RequestHeaderModifier";
}

}  // namespace sluice::config
