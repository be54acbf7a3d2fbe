#include "core/hbone/metadata.h"

#include <algorithm>
#include <array>

namespace sluice::hbone {
namespace {

void appendHex(std::string& out, uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
}

bool isLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool allZero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string formatForwardedFor(std::string_view ip) {
  std::string out = "for=\"";
  out += ip;
  out += '"';
  return out;
}

std::optional<boost::asio::ip::address> parseForwardedFor(std::string_view value) {
  if (!value.starts_with("for=")) return std::nullopt;
  value.remove_prefix(4);
  value = value.substr(0, value.find_first_of(";,"));  // the first element's for= only
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  if (value.size() >= 2 && value.front() == '[' && value.back() == ']')
    value = value.substr(1, value.size() - 2);  // RFC 7239's bracketed IPv6
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(value), ec);
  if (ec) return std::nullopt;
  return address;
}

std::string formatBaggage(const Baggage& baggage) {
  return "k8s.namespace.name=" + baggage.ns + ",k8s.pod.name=" + baggage.pod +
         ",service.name=" + baggage.service_name + ",service.version=" + baggage.service_version;
}

Baggage parseBaggage(std::string_view value) {
  Baggage out;
  while (!value.empty()) {
    const auto comma = value.find(',');
    std::string_view member = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    member = member.substr(0, member.find(';'));  // properties are not ours
    const auto equals = member.find('=');
    if (equals == std::string_view::npos) continue;
    const auto key = trim(member.substr(0, equals));
    const std::string item(trim(member.substr(equals + 1)));
    if (key == "k8s.namespace.name")
      out.ns = item;
    else if (key == "k8s.pod.name")
      out.pod = item;
    else if (key == "service.name")
      out.service_name = item;
    else if (key == "service.version")
      out.service_version = item;
  }
  return out;
}

std::string newTraceparent(std::mt19937_64& random) {
  std::string out;
  out.reserve(55);
  out = "00-";
  appendHex(out, random());
  appendHex(out, random() | 1);  // never the all-zero (invalid) trace id
  out += '-';
  appendHex(out, random() | 1);
  out += "-00";
  return out;
}

bool isValidTraceparent(std::string_view value) {
  // 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>
  if (value.size() != 55 || !value.starts_with("00-") || value[35] != '-' || value[52] != '-')
    return false;
  const auto trace_id = value.substr(3, 32), parent_id = value.substr(36, 16),
             flags = value.substr(53, 2);
  return isLowerHex(trace_id) && isLowerHex(parent_id) && isLowerHex(flags) && !allZero(trace_id) &&
         !allZero(parent_id);
}

}  // namespace sluice::hbone
