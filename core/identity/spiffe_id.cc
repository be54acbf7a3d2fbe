#include "core/identity/spiffe_id.h"

#include <cstdio>
#include <ostream>
#include <vector>

namespace sluice::identity {
namespace {

constexpr std::size_t kMaxUriLength = 2048;
constexpr std::size_t kMaxTrustDomainLength = 255;
constexpr std::string_view kExpectedPath = "/ns/<namespace>/sa/<service-account>";

bool isTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool isPathSegmentChar(char c) { return isTrustDomainChar(c) || (c >= 'A' && c <= 'Z'); }

// Shows a character so an operator can spot it even when it is a space or a control byte.
std::string describeChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", u);
  return buf;
}

Result<void> validateSegment(std::string_view what, std::string_view segment) {
  if (segment.empty()) return Error{std::string(what) + " is empty"};
  if (segment == "." || segment == "..") {
    return Error{std::string(what) + " must not be '" + std::string(segment) + "'"};
  }
  for (char c : segment) {
    if (!isPathSegmentChar(c)) {
      return Error{std::string(what) + " '" + std::string(segment) + "' contains " +
                   describeChar(c) + "; only letters, digits, '.', '-' and '_' are allowed"};
    }
  }
  return success();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

Result<SpiffeId> invalid(std::string_view uri, const std::string& why) {
  return Error{"invalid SPIFFE id '" + std::string(uri) + "': " + why};
}

}  // namespace

Result<void> validateTrustDomain(std::string_view trust_domain) {
  if (trust_domain.empty()) return Error{"trust domain is empty"};
  if (trust_domain.size() > kMaxTrustDomainLength) {
    return Error{"trust domain is " + std::to_string(trust_domain.size()) +
                 " characters long; at most 255 are allowed"};
  }
  for (char c : trust_domain) {
    if (isTrustDomainChar(c)) continue;
    std::string why =
        "trust domain '" + std::string(trust_domain) + "' contains " + describeChar(c);
    if (c >= 'A' && c <= 'Z') {
      why += "; trust domains are lowercase";
    } else if (c == ':') {
      why += "; a trust domain has no port";
    } else if (c == '@') {
      why += "; a trust domain has no user info";
    } else {
      why += "; only lowercase letters, digits, '.', '-' and '_' are allowed";
    }
    return Error{std::move(why)};
  }
  return success();
}

Result<SpiffeId> SpiffeId::parse(std::string_view uri) {
  if (uri.empty()) return invalid(uri, "it is empty");
  if (uri.size() > kMaxUriLength) {
    return Error{"invalid SPIFFE id: it is " + std::to_string(uri.size()) +
                 " bytes long; at most 2048 are allowed"};
  }
  if (!uri.starts_with(kScheme)) {
    std::size_t sep = uri.find("://");
    if (sep == std::string_view::npos) {
      return invalid(uri, "missing scheme; it must start with 'spiffe://'");
    }
    return invalid(uri, "scheme is '" + std::string(uri.substr(0, sep)) +
                            "'; it must be 'spiffe' (lowercase)");
  }
  std::string_view rest = uri.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view trust_domain = rest.substr(0, slash);
  if (auto ok = validateTrustDomain(trust_domain); !ok) return invalid(uri, ok.message());
  if (slash == std::string_view::npos) {
    return invalid(uri, "path is missing; expected " + std::string(kExpectedPath));
  }
  std::string_view path = rest.substr(slash);
  if (auto q = path.find_first_of("?#"); q != std::string_view::npos) {
    return invalid(uri,
                   std::string("a SPIFFE id has no ") + (path[q] == '?' ? "query" : "fragment"));
  }
  // path starts with '/', so the first part is always empty.
  std::vector<std::string_view> parts = split(path.substr(1), '/');
  if (parts.size() != 4 || parts[0] != "ns" || parts[2] != "sa") {
    return invalid(uri, "path '" + std::string(path) + "' does not have the form " +
                            std::string(kExpectedPath));
  }
  if (auto ok = validateSegment("namespace", parts[1]); !ok) return invalid(uri, ok.message());
  if (auto ok = validateSegment("service account", parts[3]); !ok) {
    return invalid(uri, ok.message());
  }
  return SpiffeId(std::string(trust_domain), std::string(parts[1]), std::string(parts[3]));
}

Result<SpiffeId> SpiffeId::forWorkload(std::string_view trust_domain, std::string_view ns,
                                       std::string_view sa) {
  auto fail = [&](const std::string& why) -> Result<SpiffeId> {
    return Error{"invalid SPIFFE id for trust domain '" + std::string(trust_domain) +
                 "', namespace '" + std::string(ns) + "', service account '" + std::string(sa) +
                 "': " + why};
  };
  if (auto ok = validateTrustDomain(trust_domain); !ok) return fail(ok.message());
  if (auto ok = validateSegment("namespace", ns); !ok) return fail(ok.message());
  if (auto ok = validateSegment("service account", sa); !ok) return fail(ok.message());
  SpiffeId id{std::string(trust_domain), std::string(ns), std::string(sa)};
  if (id.str().size() > kMaxUriLength) return fail("the URI would exceed 2048 bytes");
  return id;
}

std::string SpiffeId::str() const {
  if (empty()) return {};
  std::string uri;
  uri.reserve(kScheme.size() + trust_domain_.size() + ns_.size() + sa_.size() + 8);
  uri.append(kScheme).append(trust_domain_).append("/ns/").append(ns_).append("/sa/").append(sa_);
  return uri;
}

std::ostream& operator<<(std::ostream& os, const SpiffeId& id) {
  return os << (id.empty() ? std::string("<no SPIFFE id>") : id.str());
}

}  // namespace sluice::identity
