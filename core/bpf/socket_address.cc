#include "core/bpf/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace sluice::bpf {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

template <class Int>
bool parseNumber(std::string_view text, Int& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string copy(text);
  in_addr v4{};
  if (inet_pton(AF_INET, copy.c_str(), &v4) == 1) return fromV4(v4.s_addr);
  IpAddress address;
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) return address;
  return makeError("not an IP address: '" + copy + "'");
}

IpAddress IpAddress::fromV4(std::uint32_t networkOrder) {
  IpAddress address;
  std::memcpy(address.bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
  std::memcpy(address.bytes.data() + 12, &networkOrder, 4);
  return address;
}

bool IpAddress::isV4() const {
  return std::memcmp(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

std::string IpAddress::toString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (isV4()) {
    inet_ntop(AF_INET, bytes.data() + 12, text, sizeof(text));
  } else {
    inet_ntop(AF_INET6, bytes.data(), text, sizeof(text));
  }
  return text;
}

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos)
      return makeError("expected [address]:port: " + std::string(text));
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return makeError("expected address:port: " + std::string(text));
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto address = IpAddress::parse(host);
  if (!address) return address.error();
  SocketAddress result{*address, 0};
  if (!parseNumber(port, result.port)) return makeError("bad port in '" + std::string(text) + "'");
  return result;
}

Result<SocketAddress> SocketAddress::fromSockaddr(const sockaddr* addr, socklen_t length) {
  if (addr->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return SocketAddress{IpAddress::fromV4(in->sin_addr.s_addr), ntohs(in->sin_port)};
  }
  if (addr->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    SocketAddress result;
    std::memcpy(result.address.bytes.data(), &in6->sin6_addr, 16);
    result.port = ntohs(in6->sin6_port);
    return result;
  }
  return makeError("not an IPv4 or IPv6 socket address (family " + std::to_string(addr->sa_family) +
                   ")");
}

Result<SocketAddress> SocketAddress::peerOf(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return makeError(std::string("getpeername: ") + std::strerror(errno));
  }
  return fromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

Result<SocketAddress> SocketAddress::localOf(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return makeError(std::string("getsockname: ") + std::strerror(errno));
  }
  return fromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

socklen_t SocketAddress::toSockaddr(sockaddr_storage& out) const {
  out = {};
  if (address.isV4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, address.bytes.data() + 12, 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::string SocketAddress::toString() const {
  if (address.isV4()) return address.toString() + ":" + std::to_string(port);
  return "[" + address.toString() + "]:" + std::to_string(port);
}

Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return address.error();
  int maxLength = address->isV4() ? 32 : 128;
  Cidr cidr{*address, maxLength};
  if (slash != std::string_view::npos && (!parseNumber(text.substr(slash + 1), cidr.prefixLength) ||
                                          cidr.prefixLength < 0 || cidr.prefixLength > maxLength)) {
    return makeError("bad prefix length in '" + std::string(text) + "' (0.." +
                     std::to_string(maxLength) + ")");
  }
  return cidr;
}

int Cidr::mappedPrefixLength() const { return address.isV4() ? 96 + prefixLength : prefixLength; }

std::string Cidr::toString() const {
  return address.toString() + "/" + std::to_string(prefixLength);
}

}  // namespace sluice::bpf
