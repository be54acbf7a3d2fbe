#include "lab/host.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "lab/process.h"

namespace sluice::lab::host {
namespace {

using Clock = std::chrono::steady_clock;

std::string errnoText(int error) { return std::strerror(error); }

// Runs `work` on a fresh thread that first enters the netns at `netns` (none when empty), so
// the calling thread's namespaces never change. A thread that called setns() ends with it.
template <class Work>
Result<void> inNetns(const std::filesystem::path& netns, Work work) {
  Result<void> result = success();
  std::thread thread([&] {
    if (!netns.empty()) {
      int fd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        result =
            makeError("cannot open network namespace " + netns.string() + ": " + errnoText(errno));
        return;
      }
      int entered = ::setns(fd, CLONE_NEWNET);
      int error = errno;
      ::close(fd);
      if (entered != 0) {
        result =
            makeError("cannot enter network namespace " + netns.string() + ": " + errnoText(error));
        return;
      }
    }
    result = work();
  });
  thread.join();
  return result;
}

}  // namespace

Result<void> ip(std::string_view object, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto ran = runCommand(argv);
  if (!ran) return makeError(std::string(object) + ": " + ran.message());
  if (!ran->ok())
    return makeError(std::string(object) + ": `" + quoteCommand(argv) + "` " + ran->describe());
  return success();
}

Result<void> writeSysctl(const std::filesystem::path& netns, std::string_view key,
                         std::string_view value) {
  std::string path = "/proc/sys/" + std::string(key);
  return inNetns(netns, [&]() -> Result<void> {
    std::string where = netns.empty() ? "" : " in " + netns.string();
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return makeError("sysctl: cannot open " + path + where + ": " + errnoText(errno));
    ssize_t written = ::write(fd, value.data(), value.size());
    int error = errno;
    ::close(fd);
    if (written != static_cast<ssize_t>(value.size()))
      return makeError("sysctl: writing " + std::string(value) + " to " + path + where +
                       " failed: " + errnoText(error));
    return success();
  });
}

bool linkExists(std::string_view name) { return ::if_nametoindex(std::string(name).c_str()) != 0; }

bool linkExistsIn(const std::filesystem::path& netns, std::string_view name) {
  bool exists = false;
  auto entered = inNetns(netns, [&]() -> Result<void> {
    exists = linkExists(name);
    return success();
  });
  return entered.ok() && exists;
}

size_t killProcessesIn(const std::filesystem::path& netns) {
  struct stat target;
  if (::stat(netns.c_str(), &target) != 0) return 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  size_t killed = 0;
  pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    struct stat ns;
    std::string path = "/proc/" + std::string(entry->d_name) + "/ns/net";
    if (::stat(path.c_str(), &ns) != 0) continue;  // gone, or a kernel thread
    if (ns.st_dev == target.st_dev && ns.st_ino == target.st_ino &&
        ::kill(static_cast<pid_t>(pid), SIGKILL) == 0)
      ++killed;
  }
  ::closedir(proc);
  return killed;
}

namespace {

// Fallback for kernels before 5.14 (no cgroup.kill): signal every listed process, depth first.
void killListed(const std::filesystem::path& cgroup) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(cgroup, error))
    if (entry.is_directory(error)) killListed(entry.path());
  std::ifstream procs(cgroup / "cgroup.procs");
  for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
}

bool populated(int events_fd) {
  char buffer[256];
  ssize_t n = ::pread(events_fd, buffer, sizeof buffer - 1, 0);
  if (n <= 0) return false;
  buffer[n] = '\0';
  return std::strstr(buffer, "populated 1") != nullptr;
}

}  // namespace

Result<void> killCgroup(const std::filesystem::path& cgroup, std::chrono::milliseconds timeout) {
  std::string events_path = (cgroup / "cgroup.events").string();
  int events = ::open(events_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (events < 0)
    return makeError("cgroup " + cgroup.string() +
                     ": cannot open cgroup.events: " + errnoText(errno));
  if (!populated(events)) {
    ::close(events);
    return success();
  }
  std::string kill_path = (cgroup / "cgroup.kill").string();
  int kill_fd = ::open(kill_path.c_str(), O_WRONLY | O_CLOEXEC);
  if (kill_fd >= 0) {
    ssize_t written = ::write(kill_fd, "1", 1);
    ::close(kill_fd);
    if (written != 1) killListed(cgroup);
  } else {
    killListed(cgroup);
  }
  // cgroup.events signals a change with POLLPRI; wait for "populated 0" with a deadline.
  auto deadline = Clock::now() + timeout;
  bool busy;
  while ((busy = populated(events)) && Clock::now() < deadline) {
    if (kill_fd < 0) killListed(cgroup);  // without cgroup.kill, forks may race the signals
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd fd{events, POLLPRI, 0};
    ::poll(&fd, 1, std::max<int>(1, std::min<int>(static_cast<int>(left.count()), 100)));
  }
  ::close(events);
  if (busy)
    return makeError("cgroup " + cgroup.string() + ": processes still running " +
                     std::to_string(timeout.count()) + " ms after being killed");
  return success();
}

}  // namespace sluice::lab::host
