#include "core/net/authority.h"

#include <charconv>

namespace sluice::net {

namespace ip = boost::asio::ip;

Result<ip::tcp::endpoint> parseAuthority(std::string_view authority) {
  if (authority.empty()) return makeError("empty authority");
  if (authority.size() > 64) return makeError("authority longer than any ip:port");
  std::string_view host;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return makeError("IPv6 authority without closing ']'");
    host = authority.substr(1, close - 1);
    if (close + 1 >= authority.size() || authority[close + 1] != ':')
      return makeError("authority has no port (expected [ipv6]:port)");
    port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos)
      return makeError("authority has no port (expected ip:port)");
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return makeError("IPv6 authority must be bracketed: [ipv6]:port");
  }
  boost::system::error_code ec;
  const auto address = ip::make_address(std::string(host), ec);
  if (ec) return makeError("authority host '" + std::string(host) + "' is not an IP address");
  if (address.is_v6() && address.to_v6().scope_id() != 0)
    return makeError("authority must not carry an IPv6 zone");
  unsigned value = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || err != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535)
    return makeError("authority port '" + std::string(port) + "' is not in 1..65535");
  return ip::tcp::endpoint(address, static_cast<unsigned short>(value));
}

std::string formatAuthority(const ip::tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  std::string out = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return out + ":" + std::to_string(endpoint.port());
}

Result<boost::asio::ip::tcp::endpoint> parseListenAddress(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == ":0") {
    auto with_port = parseAuthority(std::string(text.substr(0, text.size() - 2)) + ":1");
    if (!with_port) return with_port.error();
    return boost::asio::ip::tcp::endpoint(with_port->address(), 0);
  }
  return parseAuthority(text);
}

}  // namespace sluice::net
