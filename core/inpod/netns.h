// Network namespaces: open one, run a function inside it on the calling thread, make sockets in it.
//
// A socket belongs to the namespace it was created in for its whole life, so ztunnel creates a
// pod's sockets inside the pod's namespace and then serves them from its ordinary worker threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "core/result.h"

namespace sluice::inpod {

class Netns {
 public:
  // Opens /proc/<pid>/ns/net, /run/netns/<name> or any other nsfs path.
  static Result<Netns> open(const std::filesystem::path& path);
  // Takes ownership of an open namespace fd (e.g. one received over SCM_RIGHTS).
  static Netns adopt(int fd);
  // The calling thread's namespace.
  static Result<Netns> current();

  Netns(Netns&&) noexcept;
  Netns& operator=(Netns&&) noexcept;
  ~Netns();

  int fd() const { return fd_; }
  // The kernel's cookie for this namespace: what bpf_get_netns_cookie() returns for its sockets.
  Result<uint64_t> cookie() const;
  // Inode number (st_ino), a stable identity for logs and comparisons.
  uint64_t inode() const;

  // Runs `fn` with the calling thread inside this namespace, then moves the thread back. If the
  // thread cannot go back the process aborts: a thread left in a pod's namespace would serve
  // other pods from the wrong network.
  Result<void> run(const std::function<void()>& fn) const;

 private:
  explicit Netns(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// A socket (SOCK_CLOEXEC | SOCK_NONBLOCK added) created inside `ns`.
Result<int> socketIn(const Netns& ns, int domain, int type, int protocol = 0);

}  // namespace sluice::inpod
