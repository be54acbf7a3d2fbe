// Request matching for the waypoint: which route a request takes. Pure functions of a request
// view; nothing here allocates per request except what RE2 does inside a match.
//
// Guarantees:
// - A StringMatcher only exists in a valid state: regexes are compiled by create(), and a bad
//   pattern comes back as an Error naming the pattern, for the config compiler to report.
// - Regexes are RE2 (the dialect Istio and Envoy use): linear time in the input, full match.
// - Header names compare case-insensitively; values compare as the matcher says.
// - A RouteMatch is the AND of its parts; a route with several matches is their OR; a route with
//   no match matches every request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace re2 {
class RE2;
}

namespace sluice::waypoint {

struct Header {
  std::string_view name;
  std::string_view value;
};

// What the matchers see of a request. It borrows: the caller keeps the strings alive.
struct RequestView {
  std::string_view method;
  std::string_view scheme;
  std::string_view authority;  // :authority or Host, possibly with a port
  std::string_view path;       // without the query
  std::string_view query;      // after '?', without it; may be empty
  std::vector<Header> headers;

  // Splits a request target ("/a/b?x=1") into path and query.
  void setTarget(std::string_view target);
  // The first header of that name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  // The first query parameter of that name (case-sensitive, as Envoy does); no percent-decoding.
  std::optional<std::string_view> queryParam(std::string_view name) const;
  // The authority without a port (IPv6 brackets kept).
  std::string_view host() const;
};

bool equalsIgnoreCase(std::string_view a, std::string_view b);

class StringMatcher {
 public:
  enum class Kind {
    kExact,
    kPrefix,      // plain string prefix (Istio `prefix`)
    kPathPrefix,  // Gateway API PathPrefix: whole path segments ("/foo" matches "/foo/x", not
                  // "/foobar")
    kRegex,       // RE2 full match
  };

  static Result<StringMatcher> create(Kind kind, std::string value, bool ignore_case = false);
  static StringMatcher exact(std::string value, bool ignore_case = false);
  static StringMatcher prefix(std::string value, bool ignore_case = false);
  static StringMatcher pathPrefix(std::string value);

  bool matches(std::string_view input) const;
  Kind kind() const { return kind_; }
  const std::string& value() const { return value_; }
  bool ignoreCase() const { return ignore_case_; }

 private:
  StringMatcher(Kind kind, std::string value, bool ignore_case)
      : kind_(kind), value_(std::move(value)), ignore_case_(ignore_case) {}

  Kind kind_;
  std::string value_;
  bool ignore_case_;
  std::shared_ptr<const re2::RE2> regex_;  // shared: routes are copied into snapshots
};

// A header or query parameter condition. kPresent/kAbsent ignore `value`; `invert` negates the
// whole result (Envoy's invert_match), so an inverted value match also matches a missing header.
struct ValueMatch {
  enum class Mode { kValue, kPresent, kAbsent };
  std::string name;
  Mode mode = Mode::kPresent;
  std::optional<StringMatcher> value;  // set when mode == kValue
  bool invert = false;
};

struct RouteMatch {
  std::optional<StringMatcher> path;
  std::optional<StringMatcher> method;
  std::optional<StringMatcher> authority;  // matched against the host without port
  std::optional<StringMatcher> scheme;
  std::optional<uint16_t> port;
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query_params;

  bool matches(const RequestView& request, std::optional<uint16_t> request_port = {}) const;
};

struct Route {
  std::string name;                 // for logs and metrics
  std::vector<RouteMatch> matches;  // OR; empty means "every request"
  size_t action = 0;                // the caller's index of what to do (destinations, filters)
};

// The routes of one host, in the order they are tried. Guarantees: select() returns the first
// entry that matches in that order, or nullopt (the caller answers 404 with flag NR).
class RouteTable {
 public:
  struct Selection {
    const Route* route;
    size_t match_index;  // which of the route's matches applied (0 for a match-all route)
  };

  // Istio VirtualService: routes are tried in the order written; the first match wins.
  static RouteTable firstMatch(std::vector<Route> routes);
  // Gateway API HTTPRoute: every match of every rule is ranked by the spec's precedence
  // (exact path, then longest prefix, then method, then most headers, then most query params).
  // Ties keep the input order, so the caller passes rules sorted by the spec's tie-breakers
  // (oldest route, then namespace/name, then rule order).
  static RouteTable gatewayPrecedence(std::vector<Route> routes);

  std::optional<Selection> select(const RequestView& request,
                                  std::optional<uint16_t> request_port = {}) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Entry {
    size_t route;
    size_t match;  // index into the route's matches; SIZE_MAX for a match-all route
  };
  std::vector<Route> routes_;
  std::vector<Entry> order_;
};

}  // namespace sluice::waypoint
