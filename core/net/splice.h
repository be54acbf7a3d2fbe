// Splice: copies bytes both ways between two TCP sockets until both directions end, carrying
// half-close and resets across; the result and byte counting shared with HBONE's tunnel splice
// (core/hbone/splice.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::net {

struct SpliceResult {
  uint64_t to_peer = 0;    // bytes read from the local socket and sent on
  uint64_t from_peer = 0;  // bytes received and written to the local socket
  std::string error;       // empty when both directions ended with a clean half-close
};

// Called as bytes move (to_peer, from_peer increments), so metrics advance on long connections.
using ByteCounter = std::function<void(uint64_t to_peer, uint64_t from_peer)>;

boost::asio::awaitable<SpliceResult> splice(boost::asio::ip::tcp::socket& local,
                                            boost::asio::ip::tcp::socket& remote,
                                            ByteCounter count = {});

// Closes with RST instead of FIN, so a reset on one side reaches the application on the other.
void abortSocket(boost::asio::ip::tcp::socket& socket);

// The copy buffer of one direction of a splice. Not zero-filled: an idle or chatty connection
// touches only the pages its bytes land in, which keeps RSS per open stream low (a zeroed 64 KiB
// buffer costs 64 KiB at once).
inline constexpr size_t kSpliceChunk = 64 * 1024;
inline std::unique_ptr<uint8_t[]> spliceBuffer() {
  return std::make_unique_for_overwrite<uint8_t[]>(kSpliceChunk);
}

}  // namespace sluice::net
