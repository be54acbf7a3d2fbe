#include "core/bpf/original_destination.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include "bpf/include/sluice_shared.h"
#include "core/bpf/kernel.h"

namespace sluice::bpf {

Result<OriginalDestinationTable> OriginalDestinationTable::openPinned(
    const std::string& pinDirectory) {
  std::string path = pinDirectory + "/orig_dst";
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return makeError("original destination table " + path +
                       " is not pinned (is sluice-agent running with the same pin directory?)");
    }
    return systemError("open original destination table " + path, err);
  }
  return OriginalDestinationTable(UniqueFd(fd));
}

namespace {

Result<SocketAddress> lookupAccepted(const OriginalDestinationTable& table, int acceptedFd,
                                     bool remove) {
  auto cookie = socketNetnsCookie(acceptedFd);
  if (!cookie) return cookie.error();
  auto peer = SocketAddress::peerOf(acceptedFd);
  if (!peer) return peer.error();
  auto local = SocketAddress::localOf(acceptedFd);
  if (!local) return local.error();
  return table.lookup(*cookie, *peer, *local, remove);
}

}  // namespace

Result<SocketAddress> OriginalDestinationTable::take(int acceptedFd) const {
  return lookupAccepted(*this, acceptedFd, true);
}

Result<SocketAddress> OriginalDestinationTable::lookup(int acceptedFd) const {
  return lookupAccepted(*this, acceptedFd, false);
}

Result<SocketAddress> OriginalDestinationTable::lookup(std::uint64_t netnsCookie,
                                                       const SocketAddress& peer,
                                                       const SocketAddress& local,
                                                       bool remove) const {
  sluice_conn_key key{};
  key.netns_cookie = netnsCookie;
  std::memcpy(key.src_addr, peer.address.bytes.data(), sizeof(key.src_addr));
  std::memcpy(key.dst_addr, local.address.bytes.data(), sizeof(key.dst_addr));
  key.src_port = htons(peer.port);
  key.dst_port = htons(local.port);
  sluice_orig_dst value{};
  int rc = remove ? bpf_map_lookup_and_delete_elem(map_.get(), &key, &value)
                  : bpf_map_lookup_elem(map_.get(), &key, &value);
  if (rc != 0) {
    int err = errno;
    if (err == ENOENT) {
      return makeError("no original destination for " + peer.toString() + " -> " +
                       local.toString() + " (not a captured connection, or already taken)");
    }
    return systemError("look up original destination", err);
  }
  SocketAddress destination;
  std::memcpy(destination.address.bytes.data(), value.addr, sizeof(value.addr));
  destination.port = ntohs(value.port);
  return destination;
}

Result<std::size_t> OriginalDestinationTable::size() const {
  sluice_conn_key key{};
  sluice_conn_key next{};
  std::size_t count = 0;
  const void* previous = nullptr;  // start from the first key
  while (bpf_map_get_next_key(map_.get(), previous, &next) == 0) {
    ++count;
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return systemError("walk original destination table", errno);
  return count;
}

}  // namespace sluice::bpf
