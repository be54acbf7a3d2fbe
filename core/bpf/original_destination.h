// Reads back where a captured connection was going (the orig_dst map filled by sockops).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bpf/bpf_util.h"
#include "core/bpf/socket_address.h"
#include "core/result.h"

namespace sluice::bpf {

// The table of original destinations, keyed by what the accepting side sees: netns cookie, peer
// and local address. The entry of a captured connection is there before its SYN is sent and stays
// until the accepting side take()s it, so every connection accepted on the outbound listener has
// one. Connections that never get established remove their own entry. Safe to use from several
// threads (each call is one syscall).
class OriginalDestinationTable {
 public:
  // Opens the table pinned by CaptureProgram under @pinDirectory: what ztunnel uses, without
  // loading any program itself.
  static Result<OriginalDestinationTable> openPinned(const std::string& pinDirectory);

  explicit OriginalDestinationTable(UniqueFd mapFd) : map_(std::move(mapFd)) {}

  // The destination the client of @acceptedFd (a socket accepted on the outbound listener)
  // connected to before capture rewrote it, removed from the table: what ztunnel calls once per
  // accepted connection.
  Result<SocketAddress> take(int acceptedFd) const;
  // The same without removing it (diagnostics).
  Result<SocketAddress> lookup(int acceptedFd) const;
  Result<SocketAddress> lookup(std::uint64_t netnsCookie, const SocketAddress& peer,
                               const SocketAddress& local, bool remove = false) const;

  // Number of entries: connections captured and not closed yet (diagnostics, leak checks).
  Result<std::size_t> size() const;

  int fd() const { return map_.get(); }

 private:
  UniqueFd map_;
};

}  // namespace sluice::bpf
