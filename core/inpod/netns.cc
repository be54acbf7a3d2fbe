#include "core/inpod/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <spdlog/spdlog.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sluice::inpod {

namespace {
std::string errnoText() { return std::strerror(errno); }
}  // namespace

Result<Netns> Netns::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return makeError("open network namespace " + path.string() + ": " + errnoText());
  return Netns(fd);
}

Netns Netns::adopt(int fd) { return Netns(fd); }

Result<Netns> Netns::current() { return open("/proc/thread-self/ns/net"); }

Netns::Netns(Netns&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

Netns& Netns::operator=(Netns&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t Netns::inode() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return 0;
  return st.st_ino;
}

Result<void> Netns::run(const std::function<void()>& fn) const {
  auto home = current();
  if (!home) return home.error();
  if (::setns(fd_, CLONE_NEWNET) != 0)
    return makeError("enter network namespace: " + errnoText() + " (needs CAP_SYS_ADMIN)");
  fn();
  if (::setns(home->fd(), CLONE_NEWNET) != 0) {
    spdlog::critical("cannot return a thread to its network namespace: {}", errnoText());
    std::abort();
  }
  return success();
}

Result<uint64_t> Netns::cookie() const {
  auto fd = socketIn(*this, AF_INET, SOCK_DGRAM);
  if (!fd) return fd.error();
  uint64_t value = 0;
  socklen_t len = sizeof value;
  const int rc = ::getsockopt(*fd, SOL_SOCKET, SO_NETNS_COOKIE, &value, &len);
  const int saved = errno;
  ::close(*fd);
  if (rc != 0) return makeError(std::string("SO_NETNS_COOKIE: ") + std::strerror(saved));
  return value;
}

Result<int> socketIn(const Netns& ns, int domain, int type, int protocol) {
  int fd = -1;
  int saved = 0;
  auto entered = ns.run([&] {
    fd = ::socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    saved = errno;
  });
  if (!entered) return entered.error();
  if (fd < 0) return makeError(std::string("socket in pod network namespace: ") + std::strerror(saved));
  return fd;
}

}  // namespace sluice::inpod
