#include "core/bpf/kernel.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/bpf/bpf_util.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sluice::bpf {

Result<std::string> findCgroup2Mount() {
  std::ifstream mounts("/proc/mounts");
  if (!mounts) return makeError("cannot read /proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string device, mountPoint, type;
    if (fields >> device >> mountPoint >> type && type == "cgroup2") return mountPoint;
  }
  return makeError("no cgroup v2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

Result<std::uint64_t> cgroupId(const std::string& cgroupPath) {
  struct stat st {};
  if (stat(cgroupPath.c_str(), &st) != 0) return systemError("cgroup " + cgroupPath, errno);
  // On cgroup v2 the directory's inode number is the cgroup id (kernfs node id, 64-bit).
  return static_cast<std::uint64_t>(st.st_ino);
}

Result<std::uint64_t> socketNetnsCookie(int socketFd) {
  std::uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  if (getsockopt(socketFd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &length) != 0) {
    return systemError("getsockopt(SO_NETNS_COOKIE) (needs Linux 5.14+)", errno);
  }
  return cookie;
}

Result<std::uint64_t> netnsCookie(int netnsFd) {
  Result<std::uint64_t> result = makeError("netns cookie: helper thread did not run");
  std::thread helper([&] {
    // setns() moves only this thread; it ends right after, so nothing else runs in the netns.
    if (setns(netnsFd, CLONE_NEWNET) != 0) {
      result = systemError("enter network namespace (setns)", errno);
      return;
    }
    UniqueFd probe(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) probe = UniqueFd(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) {
      result = systemError("socket in network namespace", errno);
      return;
    }
    result = socketNetnsCookie(probe.get());
  });
  helper.join();
  return result;
}

Result<void> checkKernelSupport() {
  struct Probe {
    const char* what;
    int supported;
  };
  std::vector<Probe> probes = {
      {"program type cgroup/sock_addr (connect4/connect6)",
       libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, nullptr)},
      {"program type sockops", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nullptr)},
      {"program type sk_lookup (Linux 5.9+)",
       libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_LOOKUP, nullptr)},
      {"map type sk_storage", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr)},
      {"map type lpm_trie", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, nullptr)},
      {"map type lru_hash", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, nullptr)},
      {"map type sockmap", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKMAP, nullptr)},
      {"helper bpf_get_netns_cookie in sockops (Linux 5.15+)",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie, nullptr)},
      {"helper bpf_sk_assign in sk_lookup",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_LOOKUP, BPF_FUNC_sk_assign, nullptr)},
  };
  std::string missing;
  for (const auto& probe : probes) {
    if (probe.supported == 1) continue;
    if (probe.supported < 0)
      return systemError(std::string("probe ") + probe.what, -probe.supported);
    missing += missing.empty() ? "" : ", ";
    missing += probe.what;
  }
  if (!missing.empty()) return makeError("the kernel lacks BPF features Sluice needs: " + missing);
  return success();
}

}  // namespace sluice::bpf
