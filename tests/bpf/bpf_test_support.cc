#include "tests/bpf/bpf_test_support.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <type_traits>

#include "core/bpf/kernel.h"

namespace sluice::bpf::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "sluice-bpftest-";

std::string errnoText(std::string_view what, int err = errno) {
  return std::string(what) + ": " + std::strerror(err);
}

// iproute2's `ip`, by absolute path: a busybox shell (test VMs) would otherwise run its own
// `ip` applet, which lacks veth peers in other namespaces and `nodad`.
const std::string& ipTool() {
  static const std::string path = [] {
    for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
      std::string candidate = std::string(dir) + "/ip";
      std::error_code ec;
      if (access(candidate.c_str(), X_OK) == 0 &&
          fs::canonical(candidate, ec).filename() != "busybox") {
        return candidate;
      }
    }
    return std::string();
  }();
  return path;
}

std::string computeEnvironmentProblem() {
  if (geteuid() != 0) {
    return "the BPF tests need root (BPF programs, cgroups, network namespaces); run them as root";
  }
  auto cgroup2 = findCgroup2Mount();
  if (!cgroup2) return cgroup2.message();
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load";
  }
  auto support = checkKernelSupport();
  if (!support) return support.message();
  if (ipTool().empty()) return "iproute2 (`ip`) is not installed";
  // A private mount namespace with a fresh BPF filesystem: pins of these tests are invisible to
  // the machine and vanish with the process, even if it crashes.
  if (unshare(CLONE_NEWNS) != 0) return errnoText("unshare(CLONE_NEWNS)");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return errnoText("make mounts private");
  }
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) {
    return errnoText("mount a private BPF filesystem on /sys/fs/bpf");
  }
  return "";
}

// Removes a cgroup directory; kills what is still in it first (cgroup.kill, Linux 5.14+).
void removeCgroup(const std::string& path) {
  if (rmdir(path.c_str()) == 0 || errno == ENOENT) return;
  {
    std::ofstream kill(path + "/cgroup.kill");
    kill << "1";
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (rmdir(path.c_str()) == 0 || errno == ENOENT) return;
    // No notification exists for "cgroup became empty" that is simpler than polling here.
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << errnoText("remove cgroup " + path);
}

// Cgroups of earlier runs whose process is gone (a crash skipped their teardown).
void removeStaleCgroups(const std::string& mount) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(mount, ec)) {
    std::string name = entry.path().filename();
    if (!entry.is_directory() || !name.starts_with(kPrefix)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + kPrefix.size()));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) removeCgroup(entry.path());
  }
}

sockaddr_storage sockaddrFor(const SocketAddress& target, int family, socklen_t& length) {
  sockaddr_storage storage{};
  if (family == AF_INET6 && target.address.isV4()) {
    // A dual-stack socket names an IPv4 peer by its v4-mapped address.
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(target.port);
    std::memcpy(&in6->sin6_addr, target.address.bytes.data(), 16);
    length = sizeof(sockaddr_in6);
    return storage;
  }
  length = target.toSockaddr(storage);
  return storage;
}

}  // namespace

const std::string& environmentProblem() {
  static const std::string problem = computeEnvironmentProblem();
  return problem;
}

bool ciMode() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

std::string uniqueName() {
  static std::atomic<int> next{0};
  return std::string(kPrefix) + std::to_string(getpid()) + "-" + std::to_string(next++);
}

Result<TestCgroup> TestCgroup::create() {
  auto mount = findCgroup2Mount();
  if (!mount) return mount.error();
  removeStaleCgroups(*mount);
  std::string path = *mount + "/" + uniqueName();
  if (mkdir(path.c_str(), 0755) != 0) return makeError(errnoText("create cgroup " + path));
  return TestCgroup(path);
}

TestCgroup::~TestCgroup() {
  if (!path_.empty()) removeCgroup(path_);
}

Result<TestNetns> TestNetns::create() {
  int fd = -1;
  std::string error;
  std::thread creator([&] {
    // unshare() moves only this thread, which then ends: the netns lives on through the fd.
    if (unshare(CLONE_NEWNET) != 0) {
      error = errnoText("unshare(CLONE_NEWNET)");
      return;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) error = errnoText("open /proc/thread-self/ns/net");
  });
  creator.join();
  if (!error.empty()) return makeError(error);
  UniqueFd owned(fd);
  auto cookie = netnsCookie(owned.get());
  if (!cookie) return cookie.error();
  TestNetns netns(std::move(owned), *cookie);
  auto up = netns.run(ipTool() + " link set lo up");
  if (!up) return up.error();
  return netns;
}

std::string TestNetns::path() const {
  return "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd_.get());
}

Result<void> TestNetns::run(const std::string& command) const {
  std::string output;
  int status = -1;
  within([&] {
    // popen forks from this thread, so the shell starts inside the namespace.
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
      output = errnoText("popen");
      return;
    }
    char buffer[512];
    while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
    status = pclose(pipe);
  });
  if (status != 0) return makeError("`" + command + "` failed: " + output);
  return success();
}

void TestNetns::within(const std::function<void()>& fn) const {
  std::thread helper([&] {
    if (setns(fd_.get(), CLONE_NEWNET) != 0) {
      ADD_FAILURE() << errnoText("setns into test netns");
      return;
    }
    fn();
  });
  helper.join();
}

Result<PodNetwork> PodNetwork::create() {
  auto pod = TestNetns::create();
  if (!pod) return pod.error();
  auto outside = TestNetns::create();
  if (!outside) return outside.error();
  // Duplicate address detection would keep the IPv6 addresses unusable for a second or two.
  // /proc/sys/net shows the namespace of the thread that opens it.
  std::string dadError;
  for (const TestNetns* netns : {&*pod, &*outside}) {
    netns->within([&] {
      for (const char* file : {"/proc/sys/net/ipv6/conf/all/accept_dad",
                               "/proc/sys/net/ipv6/conf/default/accept_dad"}) {
        std::ofstream setting(file);
        if (!(setting << "0" << std::flush)) dadError = std::string("cannot write ") + file;
      }
    });
  }
  if (!dadError.empty()) return makeError(dadError + " (IPv6 disabled?)");
  const std::string& ip = ipTool();
  const std::vector<std::pair<const TestNetns*, std::string>> steps = {
      {&*pod, ip + " link add sluice-pod type veth peer name sluice-out netns " + outside->path()},
      {&*pod, ip + " addr add 198.18.0.2/24 dev sluice-pod"},
      {&*pod, ip + " addr add fd00:5::2/64 dev sluice-pod nodad"},
      {&*pod, ip + " link set sluice-pod up"},
      {&*outside, ip + " addr add 198.18.0.1/24 dev sluice-out"},
      {&*outside, ip + " addr add fd00:5::1/64 dev sluice-out nodad"},
      {&*outside, ip + " link set sluice-out up"},
  };
  for (const auto& [netns, command] : steps) {
    auto done = netns->run(command);
    if (!done) return done.error();
  }
  return PodNetwork{std::move(*pod), std::move(*outside)};
}

UniqueFd listenIn(const TestNetns& netns, const SocketAddress& address, ListenOptions options) {
  UniqueFd listener;
  netns.within([&] {
    int family = address.address.isV4() ? AF_INET : AF_INET6;
    UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    int v6only = options.v6only ? 1 : 0;
    socklen_t length = 0;
    sockaddr_storage storage = sockaddrFor(address, family, length);
    if (!fd.valid() || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (options.mark != 0 &&
         setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &options.mark, sizeof(options.mark)) != 0) ||
        (family == AF_INET6 &&
         setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) ||
        bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        listen(fd.get(), 4096) != 0) {
      ADD_FAILURE() << errnoText("listen on " + address.toString());
      return;
    }
    listener = std::move(fd);
  });
  return listener;
}

UniqueFd acceptWithin(int listenFd, std::chrono::milliseconds timeout) {
  pollfd pfd{listenFd, POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
  return UniqueFd(accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC));
}

bool hasPendingConnection(int listenFd) {
  pollfd pfd{listenFd, POLLIN, 0};
  return poll(&pfd, 1, 0) == 1;
}

ConnectResult connectOnce(const SocketAddress& target, const PodConnectOptions& options,
                          std::chrono::milliseconds timeout) {
  ConnectResult result;
  int family = target.address.isV4() && !options.dualStack ? AF_INET : AF_INET6;
  UniqueFd fd(socket(family, options.type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    result.error = errno;
    return result;
  }
  if (options.mark != 0 &&
      setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &options.mark, sizeof(options.mark)) != 0) {
    result.error = errno;
    return result;
  }
  socklen_t length = 0;
  sockaddr_storage storage = sockaddrFor(target, family, length);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    if (errno != EINPROGRESS) {
      result.error = errno;
      return result;
    }
    pollfd pfd{fd.get(), POLLOUT, 0};
    if (poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) {
      result.error = ETIMEDOUT;
      return result;
    }
    socklen_t errorLength = sizeof(result.error);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &result.error, &errorLength);
    if (result.error != 0) return result;
  }
  auto local = SocketAddress::localOf(fd.get());
  if (local) result.local = *local;
  if (!options.payload.empty() &&
      send(fd.get(), options.payload.data(), options.payload.size(), MSG_NOSIGNAL) < 0) {
    result.error = errno;
  }
  return result;
}

ConnectResult connectFrom(const TestNetns& netns, const SocketAddress& target,
                          std::chrono::milliseconds timeout) {
  ConnectResult result;
  netns.within([&] { result = connectOnce(target, PodConnectOptions{}, timeout); });
  return result;
}

Result<PodProcess> PodProcess::start(const TestCgroup& cgroup, const TestNetns& netns,
                                     const std::function<ConnectResult()>& body) {
  static_assert(std::is_trivially_copyable_v<ConnectResult>, "sent through a pipe as bytes");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return makeError(errnoText("pipe"));
  std::string procs = cgroup.path() + "/cgroup.procs";
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return makeError(errnoText("fork"));
  }
  if (pid == 0) {
    // Child: plain system calls only, then _exit (no gtest, no atexit handlers).
    close(fds[0]);
    int procsFd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    std::string self = std::to_string(getpid());
    if (procsFd < 0 || write(procsFd, self.data(), self.size()) < 0) _exit(2);
    close(procsFd);
    if (setns(netns.fd(), CLONE_NEWNET) != 0) _exit(3);
    ConnectResult result = body();
    _exit(write(fds[1], &result, sizeof(result)) == sizeof(result) ? 0 : 4);
  }
  close(fds[1]);
  return PodProcess(pid, UniqueFd(fds[0]));
}

PodProcess::PodProcess(PodProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), report_(std::move(other.report_)) {}

PodProcess::~PodProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

Result<ConnectResult> PodProcess::finish(std::chrono::milliseconds timeout) {
  pollfd pfd{report_.get(), POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) {
    return makeError("pod process did not finish within " + std::to_string(timeout.count()) +
                     " ms");
  }
  ConnectResult result;
  ssize_t got = read(report_.get(), &result, sizeof(result));
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return makeError("pod process failed (exit " + std::to_string(code) +
                     "; 2: join cgroup, 3: enter netns, 4: report)");
  }
  if (got != sizeof(result)) return makeError("pod process sent no report");
  return result;
}

Result<ConnectResult> connectFromPod(const TestCgroup& cgroup, const TestNetns& netns,
                                     const SocketAddress& target, PodConnectOptions options,
                                     std::chrono::milliseconds timeout) {
  auto process =
      PodProcess::start(cgroup, netns, [&] { return connectOnce(target, options, timeout / 2); });
  if (!process) return process.error();
  return process->finish(timeout);
}

std::uint32_t pinnedLinkId(const std::string& path) {
  UniqueFd link(bpf_obj_get(path.c_str()));
  if (!link.valid()) return 0;
  bpf_link_info info{};
  __u32 length = sizeof(info);
  if (bpf_obj_get_info_by_fd(link.get(), &info, &length) != 0) return 0;
  return info.id;
}

TestPinDirectory::TestPinDirectory() : path_("/sys/fs/bpf/" + uniqueName()) {}

TestPinDirectory::~TestPinDirectory() {
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (ec) ADD_FAILURE() << "remove pin directory " << path_ << ": " << ec.message();
}

}  // namespace sluice::bpf::testing
