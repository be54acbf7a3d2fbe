// HBONE :authority values: the destination of a tunnel as "ip:port" ("[v6]:port" for IPv6).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::net {

// Accepts only a literal IP address and a port in 1..65535: HBONE names workloads by address,
// so a host name here is a malformed request (400), not something to resolve.
Result<boost::asio::ip::tcp::endpoint> parseAuthority(std::string_view authority);

std::string formatAuthority(const boost::asio::ip::tcp::endpoint& endpoint);

// A listen address "IP:PORT" ("[v6]:PORT"); unlike an authority, port 0 is allowed (the
// kernel picks one, and the daemon logs what it bound).
Result<boost::asio::ip::tcp::endpoint> parseListenAddress(std::string_view text);

}  // namespace sluice::net
