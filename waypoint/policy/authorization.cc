#include "waypoint/policy/authorization.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sluice::waypoint {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

std::string_view withoutSpiffe(std::string_view principal) {
  if (principal.substr(0, kSpiffePrefix.size()) == kSpiffePrefix)
    principal.remove_prefix(kSpiffePrefix.size());
  return principal;
}

bool parseAddress(std::string_view text, std::array<uint8_t, 16>& bytes, bool& v6) {
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buffer)) return false;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  bytes.fill(0);
  if (inet_pton(AF_INET, buffer, bytes.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, buffer, bytes.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

bool anyMatches(const std::vector<std::string>& patterns, std::string_view value, bool ignore_case,
                bool principal = false) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return principal ? istioStringMatches(withoutSpiffe(p), withoutSpiffe(value))
                     : istioStringMatches(p, value, ignore_case);
  });
}

// A set field matches by any of its values; a set `not` field by none of them.
bool fieldMatches(const StringValues& field, std::string_view value, bool ignore_case = false,
                  bool principal = false) {
  if (!field.values.empty() && !anyMatches(field.values, value, ignore_case, principal))
    return false;
  if (!field.not_values.empty() && anyMatches(field.not_values, value, ignore_case, principal))
    return false;
  return true;
}

bool blocksMatch(const std::vector<CidrBlock>& blocks, const std::vector<CidrBlock>& not_blocks,
                 std::string_view ip) {
  auto in = [ip](const CidrBlock& b) { return b.contains(ip); };
  if (!blocks.empty() && std::none_of(blocks.begin(), blocks.end(), in)) return false;
  if (!not_blocks.empty() && std::any_of(not_blocks.begin(), not_blocks.end(), in)) return false;
  return true;
}

}  // namespace

// Friend of Condition: evaluates rules against a request.
struct AuthorizationEvaluator {
  const Peer& peer;
  const RequestView& request;
  std::string port;

  bool source(const Source& s) const {
    return fieldMatches(s.principals, peer.principal, false, true) &&
           fieldMatches(s.namespaces, peer.namespace_) &&
           blocksMatch(s.ip_blocks, s.not_ip_blocks, peer.ip);
  }

  bool operation(const Operation& o) const {
    return fieldMatches(o.hosts, request.host(), true) && fieldMatches(o.ports, port) &&
           fieldMatches(o.methods, request.method) && fieldMatches(o.paths, request.path);
  }

  bool condition(const Condition& c) const {
    std::optional<std::string_view> value;
    switch (c.kind_) {
      case Condition::Key::kSourceIp:
        return blocksMatch(c.blocks_, c.not_blocks_, peer.ip);
      case Condition::Key::kHeader:
        value = request.header(c.header_);
        break;
      case Condition::Key::kSourceNamespace:
        value = peer.namespace_;
        break;
      case Condition::Key::kSourcePrincipal:
        value = withoutSpiffe(peer.principal);
        break;
      case Condition::Key::kDestinationPort:
        value = port;
        break;
    }
    if (!c.values_.empty() && (!value || !anyMatches(c.values_, *value, false))) return false;
    if (!c.not_values_.empty() && value && anyMatches(c.not_values_, *value, false)) return false;
    return true;
  }

  bool rule(const AuthorizationRule& r) const {
    auto src = [this](const Source& s) { return source(s); };
    auto op = [this](const Operation& o) { return operation(o); };
    auto cond = [this](const Condition& c) { return condition(c); };
    return (r.from.empty() || std::any_of(r.from.begin(), r.from.end(), src)) &&
           (r.to.empty() || std::any_of(r.to.begin(), r.to.end(), op)) &&
           std::all_of(r.when.begin(), r.when.end(), cond);
  }

  bool policy(const AuthorizationPolicy& p) const {
    return std::any_of(p.rules.begin(), p.rules.end(),
                       [this](const AuthorizationRule& r) { return rule(r); });
  }
};

Result<CidrBlock> CidrBlock::parse(std::string_view text) {
  CidrBlock block;
  std::string_view address = text;
  std::optional<unsigned> prefix;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    address = text.substr(0, slash);
    std::string_view bits = text.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), value);
    if (ec != std::errc() || end != bits.data() + bits.size() || bits.empty())
      return makeError("ipBlocks: \"" + std::string(text) + "\" has an invalid prefix length");
    prefix = value;
  }
  if (!parseAddress(address, block.bytes_, block.v6_))
    return makeError("ipBlocks: \"" + std::string(text) + "\" is not an IP address or CIDR range");
  unsigned max = block.v6_ ? 128 : 32;
  if (prefix.value_or(max) > max)
    return makeError("ipBlocks: \"" + std::string(text) + "\" has a prefix longer than " +
                     std::to_string(max));
  block.prefix_ = static_cast<uint8_t>(prefix.value_or(max));
  return block;
}

bool CidrBlock::contains(std::string_view address) const {
  std::array<uint8_t, 16> bytes;
  bool v6 = false;
  if (!parseAddress(address, bytes, v6) || v6 != v6_) return false;
  unsigned full = prefix_ / 8, rest = prefix_ % 8;
  if (!std::equal(bytes.begin(), bytes.begin() + full, bytes_.begin())) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (bytes_[full] & mask);
}

Result<Condition> Condition::create(std::string key, std::vector<std::string> values,
                                    std::vector<std::string> not_values) {
  Condition c;
  c.key_ = key;
  constexpr std::string_view kHeaderKey = "request.headers[";
  if (key.size() > kHeaderKey.size() + 1 && key.compare(0, kHeaderKey.size(), kHeaderKey) == 0 &&
      key.back() == ']') {
    c.kind_ = Key::kHeader;
    c.header_ = key.substr(kHeaderKey.size(), key.size() - kHeaderKey.size() - 1);
  } else if (key == "source.ip" || key == "remote.ip") {
    c.kind_ = Key::kSourceIp;
    for (auto [texts, blocks] : {std::pair{&values, &c.blocks_}, {&not_values, &c.not_blocks_}}) {
      for (const auto& text : *texts) {
        auto block = CidrBlock::parse(text);
        if (!block) return makeError("when " + key + ": " + block.message());
        blocks->push_back(*block);
      }
    }
  } else if (key == "source.namespace") {
    c.kind_ = Key::kSourceNamespace;
  } else if (key == "source.principal") {
    c.kind_ = Key::kSourcePrincipal;
  } else if (key == "destination.port") {
    c.kind_ = Key::kDestinationPort;
  } else {
    return makeError("when: condition key \"" + key +
                     "\" is not supported by the waypoint (supported: request.headers[<name>], "
                     "source.ip, remote.ip, source.namespace, source.principal, "
                     "destination.port)");
  }
  if (values.empty() && not_values.empty())
    return makeError("when " + key + ": one of values or notValues must be set");
  c.values_ = std::move(values);
  c.not_values_ = std::move(not_values);
  return c;
}

bool istioStringMatches(std::string_view pattern, std::string_view value, bool ignore_case) {
  auto eq = [ignore_case](std::string_view a, std::string_view b) {
    return ignore_case ? equalsIgnoreCase(a, b) : a == b;
  };
  if (pattern == "*") return !value.empty();
  if (!pattern.empty() && pattern.back() == '*') {
    std::string_view prefix = pattern.substr(0, pattern.size() - 1);
    return value.size() >= prefix.size() && eq(value.substr(0, prefix.size()), prefix);
  }
  if (!pattern.empty() && pattern.front() == '*') {
    std::string_view suffix = pattern.substr(1);
    return value.size() >= suffix.size() && eq(value.substr(value.size() - suffix.size()), suffix);
  }
  return eq(pattern, value);
}

AuthorizationDecision authorize(const std::vector<AuthorizationPolicy>& policies, const Peer& peer,
                                const RequestView& request, uint16_t destination_port) {
  using Action = AuthorizationPolicy::Action;
  using Reason = AuthorizationDecision::Reason;
  AuthorizationEvaluator evaluate{peer, request, std::to_string(destination_port)};
  for (const auto& p : policies)
    if (p.action == Action::kDeny && evaluate.policy(p))
      return {false, Reason::kDenyPolicyMatched, p.name};
  bool any_allow = false;
  for (const auto& p : policies) {
    if (p.action != Action::kAllow) continue;
    any_allow = true;
    if (evaluate.policy(p)) return {true, Reason::kAllowPolicyMatched, p.name};
  }
  if (any_allow) return {false, Reason::kNoAllowPolicyMatched, {}};
  return {true, Reason::kNoAllowPolicies, {}};
}

}  // namespace sluice::waypoint
