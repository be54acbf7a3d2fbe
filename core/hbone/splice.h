// Splice: copies bytes both ways between a TCP socket and a tunnel (or another socket) until
// both directions end, carrying half-close and resets across.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <string>

namespace sluice::hbone {

class Stream;

struct SpliceResult {
  uint64_t to_peer = 0;    // bytes read from the local socket and sent on
  uint64_t from_peer = 0;  // bytes received and written to the local socket
  std::string error;       // empty when both directions ended with a clean half-close
};

// Called as bytes move (to_peer, from_peer increments), so metrics advance on long connections.
using ByteCounter = std::function<void(uint64_t to_peer, uint64_t from_peer)>;

boost::asio::awaitable<SpliceResult> splice(boost::asio::ip::tcp::socket& local, Stream& tunnel,
                                            ByteCounter count = {});
boost::asio::awaitable<SpliceResult> splice(boost::asio::ip::tcp::socket& local,
                                            boost::asio::ip::tcp::socket& remote,
                                            ByteCounter count = {});

// Closes with RST instead of FIN, so a reset on one side reaches the application on the other.
void abortSocket(boost::asio::ip::tcp::socket& socket);

}  // namespace sluice::hbone
