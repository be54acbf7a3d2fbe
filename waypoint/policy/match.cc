#include "waypoint/policy/match.h"

#include <re2/re2.h>

#include <algorithm>
#include <limits>
#include <tuple>

namespace sluice::waypoint {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool startsWith(std::string_view input, std::string_view prefix, bool ignore_case) {
  if (input.size() < prefix.size()) return false;
  std::string_view head = input.substr(0, prefix.size());
  return ignore_case ? equalsIgnoreCase(head, prefix) : head == prefix;
}

// Gateway API PathPrefix: the prefix must end at a segment boundary. A trailing '/' in the
// prefix is ignored, so "/foo/" and "/foo" both match "/foo" and "/foo/bar".
bool pathPrefixMatches(std::string_view path, std::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix == "/" || prefix.empty()) return !path.empty() && path.front() == '/';
  if (!startsWith(path, prefix, false)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

bool valueMatches(const ValueMatch& match, std::optional<std::string_view> value) {
  bool result = false;
  switch (match.mode) {
    case ValueMatch::Mode::kPresent:
      result = value.has_value();
      break;
    case ValueMatch::Mode::kAbsent:
      result = !value.has_value();
      break;
    case ValueMatch::Mode::kValue:
      result = value.has_value() && match.value && match.value->matches(*value);
      break;
  }
  return match.invert ? !result : result;
}

// Gateway API precedence as a sortable key, larger first.
auto precedenceKey(const RouteMatch* match) {
  int path_rank = 2;  // no path: the spec's default, PathPrefix "/" (a one-character prefix)
  size_t prefix_length = 1;
  if (match && match->path) {
    switch (match->path->kind()) {
      case StringMatcher::Kind::kExact:
        path_rank = 3;
        prefix_length = match->path->value().size();
        break;
      case StringMatcher::Kind::kPrefix:
      case StringMatcher::Kind::kPathPrefix:
        path_rank = 2;
        prefix_length = match->path->value().size();
        break;
      case StringMatcher::Kind::kRegex:  // implementation-specific in the spec: after prefixes
        path_rank = 0;
        prefix_length = 0;
        break;
    }
  }
  bool has_method = match && match->method.has_value();
  size_t headers = match ? match->headers.size() : 0;
  size_t queries = match ? match->query_params.size() : 0;
  return std::make_tuple(path_rank, prefix_length, has_method, headers, queries);
}

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

void RequestView::setTarget(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    path = target;
    query = {};
  } else {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
}

std::optional<std::string_view> RequestView::header(std::string_view name) const {
  for (const auto& h : headers)
    if (equalsIgnoreCase(h.name, name)) return h.value;
  return std::nullopt;
}

std::optional<std::string_view> RequestView::queryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  }
  return std::nullopt;
}

std::string_view RequestView::host() const {
  std::string_view a = authority;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    return close == std::string_view::npos ? a : a.substr(0, close + 1);
  }
  size_t colon = a.rfind(':');
  if (colon != std::string_view::npos && a.find(':') == colon) return a.substr(0, colon);
  return a;
}

Result<StringMatcher> StringMatcher::create(Kind kind, std::string value, bool ignore_case) {
  StringMatcher matcher(kind, std::move(value), ignore_case);
  if (kind == Kind::kRegex) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(!ignore_case);
    auto regex = std::make_shared<const re2::RE2>(matcher.value_, options);
    if (!regex->ok())
      return makeError("invalid regex \"" + matcher.value_ + "\": " + regex->error() +
                       " (the RE2 syntax is that of Istio and Envoy: no backreferences or "
                       "lookaround)");
    matcher.regex_ = std::move(regex);
  }
  return matcher;
}

StringMatcher StringMatcher::exact(std::string value, bool ignore_case) {
  return StringMatcher(Kind::kExact, std::move(value), ignore_case);
}

StringMatcher StringMatcher::prefix(std::string value, bool ignore_case) {
  return StringMatcher(Kind::kPrefix, std::move(value), ignore_case);
}

StringMatcher StringMatcher::pathPrefix(std::string value) {
  return StringMatcher(Kind::kPathPrefix, std::move(value), false);
}

bool StringMatcher::matches(std::string_view input) const {
  switch (kind_) {
    case Kind::kExact:
      return ignore_case_ ? equalsIgnoreCase(input, value_) : input == value_;
    case Kind::kPrefix:
      return startsWith(input, value_, ignore_case_);
    case Kind::kPathPrefix:
      return pathPrefixMatches(input, value_);
    case Kind::kRegex:
      return RE2::FullMatch(re2::StringPiece(input.data(), input.size()), *regex_);
  }
  return false;
}

bool RouteMatch::matches(const RequestView& request, std::optional<uint16_t> request_port) const {
  if (path && !path->matches(request.path)) return false;
  if (method && !method->matches(request.method)) return false;
  if (authority && !authority->matches(request.host())) return false;
  if (scheme && !scheme->matches(request.scheme)) return false;
  if (port && request_port != port) return false;
  for (const auto& h : headers)
    if (!valueMatches(h, request.header(h.name))) return false;
  for (const auto& q : query_params)
    if (!valueMatches(q, request.queryParam(q.name))) return false;
  return true;
}

RouteTable RouteTable::firstMatch(std::vector<Route> routes) {
  RouteTable table;
  table.routes_ = std::move(routes);
  for (size_t r = 0; r < table.routes_.size(); ++r) {
    const auto& matches = table.routes_[r].matches;
    if (matches.empty()) table.order_.push_back({r, std::numeric_limits<size_t>::max()});
    for (size_t m = 0; m < matches.size(); ++m) table.order_.push_back({r, m});
  }
  return table;
}

RouteTable RouteTable::gatewayPrecedence(std::vector<Route> routes) {
  RouteTable table = firstMatch(std::move(routes));
  auto key = [&table](const Entry& e) {
    const auto& matches = table.routes_[e.route].matches;
    return precedenceKey(e.match < matches.size() ? &matches[e.match] : nullptr);
  };
  std::stable_sort(table.order_.begin(), table.order_.end(),
                   [&key](const Entry& a, const Entry& b) { return key(a) > key(b); });
  return table;
}

std::optional<RouteTable::Selection> RouteTable::select(
    const RequestView& request, std::optional<uint16_t> request_port) const {
  for (const auto& entry : order_) {
    const Route& route = routes_[entry.route];
    if (entry.match >= route.matches.size()) return Selection{&route, 0};
    if (route.matches[entry.match].matches(request, request_port))
      return Selection{&route, entry.match};
  }
  return std::nullopt;
}

}  // namespace sluice::waypoint
