// What the BPF tests build around the programs: a private BPF filesystem, a cgroup, network
// namespaces joined by a veth pair, sockets in them, and "pod" processes that join the cgroup and
// the pod netns before they connect. Everything is unique to the run and removed on teardown.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/bpf/bpf_util.h"
#include "core/bpf/socket_address.h"
#include "core/result.h"

namespace sluice::bpf::testing {

using namespace std::chrono_literals;

// Why these tests cannot run here ("" when they can). Evaluated once per process, on first use
// (before the tests start threads): needs root, cgroup v2 and the BPF features; moves the process
// into a private mount namespace with its own BPF filesystem on /sys/fs/bpf, so pins never show
// on (or outlive the test on) the machine.
const std::string& environmentProblem();
bool ciMode();  // CI=true: a missing prerequisite is a failure, not a skip

// Skips (or, under CI=true, fails) the current test when the environment cannot run it.
#define SLUICE_REQUIRE_BPF_ENVIRONMENT()                                              \
  do {                                                                                \
    const std::string& sluice_problem = ::sluice::bpf::testing::environmentProblem(); \
    if (!sluice_problem.empty()) {                                                    \
      if (::sluice::bpf::testing::ciMode()) {                                         \
        GTEST_FAIL() << sluice_problem;                                               \
      } else {                                                                        \
        GTEST_SKIP() << sluice_problem;                                               \
      }                                                                               \
    }                                                                                 \
  } while (0)

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    const auto& sluice_result = (expr);                         \
    ASSERT_TRUE(sluice_result.ok()) << sluice_result.message(); \
  } while (0)

#define EXPECT_OK(expr)                                         \
  do {                                                          \
    const auto& sluice_result = (expr);                         \
    EXPECT_TRUE(sluice_result.ok()) << sluice_result.message(); \
  } while (0)

// "sluice-bpftest-<pid>-<n>": unique to this process and call.
std::string uniqueName();

// A cgroup v2 directory under the machine's cgroup2 mount, removed (with any process left in it)
// on destruction. Cgroups left by crashed runs (dead pid in the name) are removed on creation.
class TestCgroup {
 public:
  static Result<TestCgroup> create();
  TestCgroup(TestCgroup&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TestCgroup& operator=(TestCgroup&&) = delete;
  ~TestCgroup();

  const std::string& path() const { return path_; }

 private:
  explicit TestCgroup(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// An unnamed network namespace held by an fd: it disappears with its last reference, so a crashed
// test cannot leave it behind, and two runs cannot collide on a name.
class TestNetns {
 public:
  static Result<TestNetns> create();

  int fd() const { return fd_.get(); }
  std::uint64_t cookie() const { return cookie_; }
  // "/proc/<pid>/fd/<n>": how tools such as `ip ... netns PATH` can name it.
  std::string path() const;

  // Runs a shell command inside the namespace; the error carries its output.
  Result<void> run(const std::string& command) const;
  // Calls @fn on a helper thread inside the namespace (sockets it creates stay there).
  void within(const std::function<void()>& fn) const;

 private:
  TestNetns(UniqueFd fd, std::uint64_t cookie) : fd_(std::move(fd)), cookie_(cookie) {}
  UniqueFd fd_;
  std::uint64_t cookie_ = 0;
};

// A pod and the world outside it, joined by a veth pair:
//   outside: 198.18.0.1/24, fd00:5::1/64  <-->  pod: 198.18.0.2/24, fd00:5::2/64
struct PodNetwork {
  static Result<PodNetwork> create();
  TestNetns pod;
  TestNetns outside;
};

struct ListenOptions {
  std::uint32_t mark = 0;  // SO_MARK
  bool v6only = true;      // IPV6_V6ONLY for IPv6 addresses (false: dual-stack [::])
};

// A listening TCP socket bound to @address inside @netns.
UniqueFd listenIn(const TestNetns& netns, const SocketAddress& address, ListenOptions options = {});
// Accepts a connection, waiting at most @timeout; an invalid fd when none arrived.
UniqueFd acceptWithin(int listenFd, std::chrono::milliseconds timeout = 5s);
// True when a connection waits in @listenFd's accept queue right now.
bool hasPendingConnection(int listenFd);

struct ConnectResult {
  int error = 0;        // errno of connect(), 0 when connected
  SocketAddress local;  // getsockname() once connected
};

// Connects from a socket created inside @netns by this process (not in any test cgroup).
ConnectResult connectFrom(const TestNetns& netns, const SocketAddress& target,
                          std::chrono::milliseconds timeout = 3s);

struct PodConnectOptions {
  int type = 1;                   // SOCK_STREAM; 2 = SOCK_DGRAM
  std::uint32_t mark = 0;         // SO_MARK set before connect()
  bool dualStack = false;         // an AF_INET6 socket even for an IPv4 target (v4-mapped)
  std::string_view payload = {};  // sent once connected, before the socket is closed
};

// A "pod application": a child process that joins @cgroup, then enters @netns (in this order: a
// cgroup is joined through /sys/fs/cgroup, which must be the host's view), and connects to
// @target. Waits for the child with a deadline.
Result<ConnectResult> connectFromPod(const TestCgroup& cgroup, const TestNetns& netns,
                                     const SocketAddress& target, PodConnectOptions options = {},
                                     std::chrono::milliseconds timeout = 10s);

// A child process that runs @body in @cgroup and @netns, while the caller goes on (e.g. to accept
// what it connects). finish() waits for it and returns what @body returned.
class PodProcess {
 public:
  static Result<PodProcess> start(const TestCgroup& cgroup, const TestNetns& netns,
                                  const std::function<ConnectResult()>& body);
  PodProcess(PodProcess&& other) noexcept;
  PodProcess& operator=(PodProcess&&) = delete;
  ~PodProcess();  // kills a child that is still running

  Result<ConnectResult> finish(std::chrono::milliseconds timeout);

 private:
  PodProcess(pid_t pid, UniqueFd report) : pid_(pid), report_(std::move(report)) {}
  pid_t pid_ = -1;
  UniqueFd report_;
};

// Connects a fresh socket (inside the current netns) to @target; for PodProcess bodies.
ConnectResult connectOnce(const SocketAddress& target, const PodConnectOptions& options,
                          std::chrono::milliseconds timeout = 3s);

// The kernel id of the link pinned at @path (0 when there is none): the same id after a restart
// means the link was updated in place rather than replaced.
std::uint32_t pinnedLinkId(const std::string& path);

// A pin directory on the private BPF filesystem, removed with everything in it on destruction.
class TestPinDirectory {
 public:
  TestPinDirectory();
  ~TestPinDirectory();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::bpf::testing
