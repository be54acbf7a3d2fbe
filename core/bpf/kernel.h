// What the BPF data path needs from the running kernel and how to find it.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace sluice::bpf {

// The first cgroup v2 mount in /proc/mounts (/sys/fs/cgroup on most nodes, /sys/fs/cgroup/unified
// on hybrid set-ups).
Result<std::string> findCgroup2Mount();

// The cgroup id of a cgroup v2 directory (what bpf_link_info reports for a cgroup link).
Result<std::uint64_t> cgroupId(const std::string& cgroupPath);

// The netns cookie of the network namespace a socket belongs to (SO_NETNS_COOKIE, Linux 5.14+);
// equal to what bpf_get_netns_cookie() returns for that namespace's sockets.
Result<std::uint64_t> socketNetnsCookie(int socketFd);

// The netns cookie of the namespace behind @netnsFd (an nsfs fd such as /proc/PID/ns/net or
// /run/netns/NAME). Enters it on a short-lived helper thread; the caller's thread never moves.
Result<std::uint64_t> netnsCookie(int netnsFd);

// Checks that the kernel offers every program type, map type and helper the capture and inbound
// programs use; the error names each missing one.
Result<void> checkKernelSupport();

}  // namespace sluice::bpf
