#include "lab/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "core/net/unique_fd.h"

extern char** environ;

namespace sluice::lab {
namespace {

using Clock = std::chrono::steady_clock;

std::string errnoText(int error) { return std::strerror(error); }

using net::UniqueFd;

int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The steps a child takes between fork and exec, in order; reported back when one fails.
enum class ChildStage : int { kRedirect = 1, kChdir, kJoinCgroup, kEnterNetns, kExec };

const char* stageText(ChildStage stage) {
  switch (stage) {
    case ChildStage::kRedirect:
      return "redirecting its output";
    case ChildStage::kChdir:
      return "changing to its working directory";
    case ChildStage::kJoinCgroup:
      return "joining the cgroup";
    case ChildStage::kEnterNetns:
      return "entering the network namespace";
    case ChildStage::kExec:
      return "exec";
  }
  return "?";
}

struct ChildFailure {
  int stage = 0;
  int error = 0;
};

// Everything the child needs, prepared before fork: after fork only async-signal-safe calls.
struct Prepared {
  std::string path;
  std::vector<std::string> args;
  std::vector<char*> argv;  // filled by pointers() once `p` no longer moves
  UniqueFd cgroup_procs;    // open for writing, or -1
  UniqueFd netns;           // open, or -1
  std::string working_dir;
  std::vector<std::string> env;
  std::vector<char*> envp;  // filled by pointers()
  bool new_session = false;
  std::string describe;  // for error messages
  std::string cgroup_path;
  std::string netns_path;

  void pointers() {
    argv.clear();
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    envp.clear();
    for (std::string& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
};

// The caller's environment with `extra` ("NAME=value") added, an entry of the same name replaced.
std::vector<std::string> mergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  auto nameOf = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view name = nameOf(*entry);
    bool replaced = std::any_of(extra.begin(), extra.end(),
                                [&](const std::string& e) { return nameOf(e) == name; });
    if (!replaced) out.emplace_back(*entry);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

Result<Prepared> prepare(const std::vector<std::string>& argv, const Placement& where,
                         const std::filesystem::path& working_dir,
                         const std::vector<std::string>& environment = {}) {
  if (argv.empty()) return makeError("no command given");
  Prepared p;
  p.describe = quoteCommand(argv);
  auto path = findExecutable(argv[0]);
  if (!path) return makeError("cannot run `" + p.describe + "`: " + path.message());
  p.path = path->string();
  p.args = argv;
  if (!where.cgroup.empty()) {
    p.cgroup_path = where.cgroup.string();
    std::string procs = (where.cgroup / "cgroup.procs").string();
    p.cgroup_procs = UniqueFd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (p.cgroup_procs.get() < 0)
      return makeError("cannot run `" + p.describe + "` in cgroup " + p.cgroup_path + ": opening " +
                       procs + ": " + errnoText(errno));
  }
  if (!where.netns.empty()) {
    p.netns_path = where.netns.string();
    p.netns = UniqueFd(::open(p.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (p.netns.get() < 0)
      return makeError("cannot run `" + p.describe + "` in network namespace " + p.netns_path +
                       ": " + errnoText(errno));
  }
  p.working_dir = working_dir.string();
  p.env = mergedEnvironment(environment);
  return p;
}

// In the child: report why we could not exec, then leave without running atexit handlers.
[[noreturn]] void childFail(int report_fd, ChildStage stage) {
  ChildFailure failure{static_cast<int>(stage), errno};
  ssize_t ignored = ::write(report_fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

// In the child: cgroup first, then netns (see the header), then exec. Never returns.
[[noreturn]] void childBecome(const Prepared& p, int report_fd) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a caller's blocked signals must not leak
  if (p.new_session) ::setsid();
  if (!p.working_dir.empty() && ::chdir(p.working_dir.c_str()) != 0)
    childFail(report_fd, ChildStage::kChdir);
  if (p.cgroup_procs.get() >= 0 && ::write(p.cgroup_procs.get(), "0", 1) != 1)
    childFail(report_fd, ChildStage::kJoinCgroup);
  if (p.netns.get() >= 0 && ::setns(p.netns.get(), CLONE_NEWNET) != 0)
    childFail(report_fd, ChildStage::kEnterNetns);
  ::execve(p.path.c_str(), p.argv.data(), p.envp.data());
  childFail(report_fd, ChildStage::kExec);
}

std::string failureText(const Prepared& p, const ChildFailure& failure) {
  auto stage = static_cast<ChildStage>(failure.stage);
  std::string text = "cannot run `" + p.describe + "`: " + stageText(stage);
  if (stage == ChildStage::kJoinCgroup) text += " " + p.cgroup_path;
  if (stage == ChildStage::kEnterNetns) text += " " + p.netns_path;
  if (stage == ChildStage::kChdir) text += " " + p.working_dir;
  return text + " failed: " + errnoText(failure.error);
}

// Reads the child's report pipe to EOF: nothing means exec succeeded.
std::optional<ChildFailure> readReport(int fd) {
  ChildFailure failure;
  size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = ::read(fd, reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == sizeof failure) return failure;
  return std::nullopt;
}

// Decodes a waitpid status into (exit code, signal).
std::pair<int, int> decodeStatus(int status) {
  if (WIFEXITED(status)) return {WEXITSTATUS(status), 0};
  if (WIFSIGNALED(status)) return {-1, WTERMSIG(status)};
  return {-1, 0};
}

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.pop_back();
  return text;
}

}  // namespace

std::string CommandResult::describe() const {
  if (timed_out) return "timed out" + (err.empty() ? "" : ": " + trim(err));
  if (signal != 0) return "was killed by signal " + std::to_string(signal);
  std::string text = "exited " + std::to_string(exit_code);
  std::string detail = trim(err.empty() ? out : err);
  if (!detail.empty()) text += ": " + detail;
  return text;
}

std::string quoteCommand(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$*?;&|<>()") == std::string::npos;
    text += plain ? arg : "'" + arg + "'";
  }
  return text;
}

Result<std::filesystem::path> findExecutable(std::string_view name) {
  if (name.empty()) return makeError("empty program name");
  if (name.find('/') != std::string_view::npos) return std::filesystem::path(name);
  std::string search;
  if (const char* path = std::getenv("PATH")) search = path;
  search += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::stringstream dirs(search);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return makeError("\"" + std::string(name) + "\" not found in PATH");
}

Result<CommandResult> runCommand(const std::vector<std::string>& argv, const Placement& where,
                                 std::chrono::milliseconds timeout) {
  auto prepared = prepare(argv, where, {});
  if (!prepared) return prepared.error();
  Prepared& p = *prepared;
  p.pointers();
  int out_pipe[2], err_pipe[2], report_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return makeError("pipe: " + errnoText(errno));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return makeError("pipe: " + errnoText(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  if (::pipe2(report_pipe, O_CLOEXEC) != 0) return makeError("pipe: " + errnoText(errno));
  UniqueFd report_read(report_pipe[0]), report_write(report_pipe[1]);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  pid_t pid = ::fork();
  if (pid < 0) return makeError("cannot run `" + p.describe + "`: fork: " + errnoText(errno));
  if (pid == 0) {
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 ||
        ::dup2(err_write.get(), 2) < 0)
      childFail(report_write.get(), ChildStage::kRedirect);
    childBecome(p, report_write.get());
  }
  out_write.reset();
  err_write.reset();
  report_write.reset();
  UniqueFd pidfd(pidfdOpen(pid));

  if (auto failure = readReport(report_read.get())) {
    ::waitpid(pid, nullptr, 0);
    return makeError(failureText(p, *failure));
  }

  CommandResult result;
  auto deadline = Clock::now() + timeout;
  bool out_open = true, err_open = true;
  char buffer[4096];
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out_read.get() : -1, POLLIN, 0},
                     {err_open ? err_read.get() : -1, POLLIN, 0}};
    int ready = ::poll(fds, 2, remainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      result.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  if (!result.timed_out && pidfd.get() >= 0) {
    pollfd fd{pidfd.get(), POLLIN, 0};
    while (::poll(&fd, 1, remainingMs(deadline)) < 0 && errno == EINTR) {
    }
    if (fd.revents == 0) result.timed_out = true;
  }
  if (result.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!result.timed_out) std::tie(result.exit_code, result.signal) = decodeStatus(status);
  return result;
}

Result<ChildProcess> ChildProcess::start(const std::vector<std::string>& argv,
                                         const Placement& where, const StartOptions& options) {
  auto prepared = prepare(argv, where, options.working_dir, options.environment);
  if (!prepared) return prepared.error();
  Prepared& p = *prepared;
  p.new_session = options.new_session;
  p.pointers();
  UniqueFd output;
  if (!options.output.empty()) {
    output =
        UniqueFd(::open(options.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (output.get() < 0)
      return makeError("cannot run `" + p.describe + "`: opening its output file " +
                       options.output.string() + ": " + errnoText(errno));
  }
  int report_pipe[2];
  if (::pipe2(report_pipe, O_CLOEXEC) != 0) return makeError("pipe: " + errnoText(errno));
  UniqueFd report_read(report_pipe[0]), report_write(report_pipe[1]);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  pid_t pid = ::fork();
  if (pid < 0) return makeError("cannot run `" + p.describe + "`: fork: " + errnoText(errno));
  if (pid == 0) {
    if (::dup2(devnull.get(), 0) < 0) childFail(report_write.get(), ChildStage::kRedirect);
    if (output.get() >= 0 && (::dup2(output.get(), 1) < 0 || ::dup2(output.get(), 2) < 0))
      childFail(report_write.get(), ChildStage::kRedirect);
    childBecome(p, report_write.get());
  }
  report_write.reset();
  ChildProcess child(pid, pidfdOpen(pid));
  if (auto failure = readReport(report_read.get())) {
    ::waitpid(pid, nullptr, 0);
    child.release();
    return makeError(failureText(p, *failure));
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::exchange(other.pidfd_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() { stop(); }

void ChildProcess::release() {
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = -1;
  pid_ = -1;
}

Result<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return makeError("process already reaped");
  if (pidfd_ >= 0) {
    pollfd fd{pidfd_, POLLIN, 0};
    auto deadline = Clock::now() + timeout;
    int ready;
    while ((ready = ::poll(&fd, 1, remainingMs(deadline))) < 0 && errno == EINTR) {
    }
    if (ready == 0)
      return makeError("process " + std::to_string(pid_) + " still running after " +
                       std::to_string(timeout.count()) + " ms");
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  release();
  return decodeStatus(status).first;
}

void ChildProcess::stop(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  auto done = wait(std::chrono::seconds(5));
  if (!done && signal != SIGKILL) {
    ::kill(pid_, SIGKILL);
    (void)wait(std::chrono::seconds(5));
  }
  release();
}

pid_t ChildProcess::detach() {
  pid_t pid = pid_;
  release();
  return pid;
}

bool processAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  // pid (comm) STATE ...: comm may hold spaces and parentheses, so look after the last ')'.
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

Result<void> stopProcess(pid_t pid, int signal, std::chrono::milliseconds timeout) {
  if (!processAlive(pid)) return success();
  UniqueFd pidfd(pidfdOpen(pid));
  if (pidfd.get() < 0)
    return errno == ESRCH ? success() : makeError("pidfd_open: " + errnoText(errno));
  auto waitGone = [&](std::chrono::milliseconds limit) {
    // A pidfd of a process that is not our child turns readable when it exits; a child of
    // ours would linger as a zombie, which processAlive() treats as gone.
    auto deadline = Clock::now() + limit;
    while (processAlive(pid)) {
      pollfd fd{pidfd.get(), POLLIN, 0};
      int ready = ::poll(&fd, 1, std::min(remainingMs(deadline), 100));
      if (ready > 0) return true;
      if (Clock::now() >= deadline) return false;
    }
    return true;
  };
  if (::kill(pid, signal) != 0)
    return errno == ESRCH ? success() : makeError("kill: " + errnoText(errno));
  if (waitGone(timeout)) return success();
  ::kill(pid, SIGKILL);
  if (waitGone(std::chrono::seconds(5))) return success();
  return makeError("process " + std::to_string(pid) + " did not end after SIGKILL");
}

Error execIn(const std::vector<std::string>& argv, const Placement& where) {
  auto prepared = prepare(argv, where, {});
  if (!prepared) return prepared.error();
  Prepared& p = *prepared;
  p.pointers();
  if (p.cgroup_procs.get() >= 0 && ::write(p.cgroup_procs.get(), "0", 1) != 1)
    return makeError(failureText(p, {static_cast<int>(ChildStage::kJoinCgroup), errno}));
  if (p.netns.get() >= 0 && ::setns(p.netns.get(), CLONE_NEWNET) != 0)
    return makeError(failureText(p, {static_cast<int>(ChildStage::kEnterNetns), errno}));
  ::execve(p.path.c_str(), p.argv.data(), p.envp.data());
  return makeError(failureText(p, {static_cast<int>(ChildStage::kExec), errno}));
}

namespace {

// True when /proc/<pid>/net/<file> lists a LISTEN socket (state 0A) on `port`.
Result<bool> listensIn(pid_t pid, const char* file, uint16_t port) {
  std::string path = "/proc/" + std::to_string(pid) + "/net/" + file;
  std::ifstream in(path);
  // Unreadable once the process has exited (its netns reference is gone).
  if (!in)
    return makeError("process " + std::to_string(pid) + " exited before listening on port " +
                     std::to_string(port));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    auto colon = local.rfind(':');
    if (colon == std::string::npos || state != "0A") continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) return true;
  }
  return false;
}

}  // namespace

Result<void> waitForListener(pid_t pid, uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    // A zombie keeps its /proc entry but no longer runs: treat that as "exited".
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    auto comm_end = stat.rfind(')');  // the command name may hold spaces and parentheses
    char state =
        comm_end != std::string::npos && comm_end + 2 < stat.size() ? stat[comm_end + 2] : 'Z';
    if (state == 'Z' || state == 'X')
      return makeError("process " + std::to_string(pid) + " exited before listening on port " +
                       std::to_string(port));
    for (const char* file : {"tcp", "tcp6"}) {
      auto found = listensIn(pid, file, port);
      if (!found) return found.error();
      if (*found) return success();
    }
    if (Clock::now() >= deadline)
      return makeError("process " + std::to_string(pid) + " is not listening on port " +
                       std::to_string(port) + " after " + std::to_string(timeout.count()) + " ms");
    // Polling is the only portable signal that a foreign process has called listen().
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace sluice::lab
