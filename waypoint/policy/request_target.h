// The request target as the waypoint judges and forwards it (RFC 9112 section 3.2), normalized as
// Envoy's normalize_path does, so that path rules see the path the application will see:
// "/api/../admin", "/%61dmin" and "http://x/admin" are all "/admin" to an AuthorizationPolicy.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::waypoint {

struct RequestTarget {
  std::string target;  // origin-form, normalized: "/path?query" (or "*" for OPTIONS)
  // The authority of an absolute-form target ("http://host/..."), which replaces Host
  // (RFC 9112 section 3.2.2); nullopt for origin-form.
  std::optional<std::string> authority;
};

// Normalizes an origin-form or absolute-form target: percent-encoded unreserved characters are
// decoded (RFC 3986 section 6.2.2.2), "." and ".." segments removed (section 5.2.4), the hex
// of the other escapes upper-cased; the fragment is dropped. An encoded '/' ("%2F") stays one
// segment. Anything else (an authority-form target, invalid escapes, a scheme other than http
// or https, bytes no URI holds) is an error: the request is answered 400.
Result<RequestTarget> normalizeRequestTarget(std::string_view target, std::string_view method);

// A Host (or :authority) value as routes and policies compare it: a trailing dot of a fully
// qualified name removed ("reviews.shop.svc.cluster.local." is that service), the port kept.
std::string canonicalHost(std::string_view host);

}  // namespace sluice::waypoint
