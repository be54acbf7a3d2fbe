#include "waypoint/policy/request_target.h"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <vector>

namespace sluice::waypoint {

namespace {

bool isUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 section 6.2.2: escapes of unreserved characters decoded, the others' hex upper-cased.
// (Boost.URL 1.81's normalize_path also decodes %2F and keeps leading ".." segments, so the path
// is normalized here; Boost.URL still validates the syntax.)
std::string normalizeEscapes(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size()) {
      const int hi = hexValue(path[i + 1]), lo = hexValue(path[i + 2]);
      const char decoded = static_cast<char>(hi * 16 + lo);
      if (isUnreserved(decoded)) {
        out += decoded;
      } else {
        out += '%';
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 1])));
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 2])));
      }
      i += 2;
    } else {
      out += path[i];
    }
  }
  return out;
}

// RFC 3986 section 5.2.4 on an absolute path: "." segments dropped, ".." removes the segment
// before it (never above the root).
std::string removeDotSegments(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = 1;  // after the leading '/'
  bool trailing_slash = false;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    const bool last = end == path.size();
    if (segment == ".") {
      trailing_slash = last;
    } else if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    start = end + 1;
  }
  std::string out;
  for (const auto segment : segments) {
    out += '/';
    out += segment;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

}  // namespace

Result<RequestTarget> normalizeRequestTarget(std::string_view target, std::string_view method) {
  if (target == "*" && method == "OPTIONS") return RequestTarget{std::string(target), {}};
  RequestTarget out;
  boost::urls::url_view url;
  if (target.starts_with('/')) {
    auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed)
      return makeError("request target is not a valid path: " + parsed.error().message());
    url = *parsed;
  } else {
    auto parsed = boost::urls::parse_absolute_uri(target);
    if (!parsed) return makeError("request target is neither a path nor an absolute URI");
    boost::urls::url absolute = *parsed;
    absolute.normalize_scheme();
    absolute.normalize_authority();
    if (absolute.scheme() != "http" && absolute.scheme() != "https")
      return makeError("request target has scheme '" + std::string(absolute.scheme()) +
                       "', not http or https");
    if (!absolute.has_authority() || absolute.encoded_host().empty())
      return makeError("absolute request target without a host");
    out.authority = std::string(absolute.encoded_host_and_port());
    url = *parsed;
  }
  const std::string_view path = url.encoded_path();
  if (path.empty())
    out.target = "/";
  else if (path.find('%') == std::string_view::npos && path.find("/.") == std::string_view::npos)
    out.target = path;  // already normal: the common case costs one copy
  else
    out.target = removeDotSegments(normalizeEscapes(path));
  if (url.has_query()) {
    out.target += '?';
    out.target += url.encoded_query();
  }
  return out;
}

std::string canonicalHost(std::string_view host) {
  if (host.starts_with('[')) return std::string(host);  // an IPv6 literal has no name to end
  std::string_view name = host, port;
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon);
  }
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  return std::string(name) + std::string(port);
}

}  // namespace sluice::waypoint
