// IP addresses, socket addresses and CIDRs in the form the BPF maps use them.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::bpf {

// An IPv4 or IPv6 address. IPv4 is held IPv4-mapped (::ffff:a.b.c.d), as in the BPF maps, so an
// IPv4 peer seen through an AF_INET or a dual-stack AF_INET6 socket compares equal.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};  // network byte order

  // "198.18.0.1", "fd00:5::1" or "::ffff:198.18.0.1".
  static Result<IpAddress> parse(std::string_view text);
  static IpAddress fromV4(std::uint32_t networkOrder);

  bool isV4() const;             // IPv4-mapped
  std::string toString() const;  // dotted quad for IPv4
  bool operator==(const IpAddress&) const = default;
};

struct SocketAddress {
  IpAddress address;
  std::uint16_t port = 0;  // host byte order

  // "198.18.0.1:80" or "[fd00:5::1]:80".
  static Result<SocketAddress> parse(std::string_view text);
  static Result<SocketAddress> fromSockaddr(const sockaddr* addr, socklen_t length);
  static Result<SocketAddress> peerOf(int fd);   // getpeername
  static Result<SocketAddress> localOf(int fd);  // getsockname

  // An AF_INET sockaddr for IPv4, AF_INET6 otherwise; returns its length.
  socklen_t toSockaddr(sockaddr_storage& out) const;
  std::string toString() const;
  bool operator==(const SocketAddress&) const = default;
};

// An address prefix such as 198.18.0.0/15 or fd00:5::/64. The prefix length is that of the
// written family (an IPv4 /15 is stored as /15, mapped to /111 only inside the map key).
struct Cidr {
  IpAddress address;
  int prefixLength = 0;

  static Result<Cidr> parse(std::string_view text);  // a bare address is a host prefix
  int mappedPrefixLength() const;  // prefix length over the 128-bit (IPv4-mapped) form
  std::string toString() const;
  bool operator==(const Cidr&) const = default;
};

}  // namespace sluice::bpf
