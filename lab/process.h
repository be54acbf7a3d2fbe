// Running programs for the lab: fork/exec without a shell, optionally as a member of a cgroup
// and inside a network namespace, with output captured and a deadline.
//
// Nothing here goes through `ip netns exec`: that remounts /sys in a private mount namespace,
// which hides the cgroup2 tree. A child joins its cgroup first and then setns(2)s into the
// netns, so both work whatever the mount layout.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.h"

namespace sluice::lab {

// Where a child runs. Empty paths leave that part of the caller's context alone.
struct Placement {
  std::filesystem::path cgroup;  // a cgroup v2 directory to join (its cgroup.procs is written)
  std::filesystem::path netns;   // a network namespace file to enter (e.g. /run/netns/NAME)
};

struct CommandResult {
  int exit_code = -1;  // the exit status, or -1 when the command died from a signal
  int signal = 0;      // the signal that ended it, 0 when it exited
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0 && !timed_out; }
  // "exited 2: <stderr, trimmed>" / "was killed by signal 9" / "timed out after ..."
  std::string describe() const;
};

// The command line as a person would type it, for error messages.
std::string quoteCommand(const std::vector<std::string>& argv);

// Finds an executable: a name with a '/' is used as given, otherwise PATH is searched (then
// /usr/sbin and /sbin, where Debian keeps `ip`, in case PATH lacks them).
Result<std::filesystem::path> findExecutable(std::string_view name);

// Runs `argv` to completion and captures its output. An error means it could not be started
// (or could not join `where`); a command that ran and failed is a CommandResult with its
// exit code. On timeout the child is killed and `timed_out` is set.
Result<CommandResult> runCommand(const std::vector<std::string>& argv, const Placement& where = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct StartOptions {
  // stdout and stderr are appended to this file; empty inherits the caller's.
  std::filesystem::path output;
  // The child's working directory; empty keeps the caller's.
  std::filesystem::path working_dir;
  // "NAME=value" entries added to (or overriding) the caller's environment.
  std::vector<std::string> environment;
  // A session of its own (setsid), so a daemon outlives the terminal of whoever started it.
  bool new_session = false;
};

// A started child process. Owns it: the destructor kills (SIGKILL) and reaps it unless it
// was already waited for, so a failing test never leaves a process behind.
class ChildProcess {
 public:
  // Returns once the child has joined `where` and exec'd `argv`; failures before exec (joining
  // the cgroup, entering the netns, exec itself) come back as an Error naming the step.
  static Result<ChildProcess> start(const std::vector<std::string>& argv,
                                    const Placement& where = {}, const StartOptions& options = {});

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Waits for the child to end; an Error when it is still running at the deadline.
  // Exit code as in CommandResult (-1 for a signal).
  Result<int> wait(std::chrono::milliseconds timeout);
  // Sends `signal` and reaps the child (waiting at most 5 s); no-op when it already ended.
  void stop(int signal = 9);
  // Gives up ownership: the child keeps running after this handle (and its parent) are gone.
  // Returns its pid.
  pid_t detach();

 private:
  ChildProcess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  void release();

  pid_t pid_ = -1;
  int pidfd_ = -1;
};

// Replaces the current process with `argv` placed in `where` (cgroup first, then netns).
// Returns only on failure.
Error execIn(const std::vector<std::string>& argv, const Placement& where);

// Sends `signal` to `pid`, a process that need not be our child, and waits until it has
// ended; SIGKILL after `timeout`. Success when it was not running.
Result<void> stopProcess(pid_t pid, int signal, std::chrono::milliseconds timeout);
// Whether `pid` names a live (not zombie) process.
bool processAlive(pid_t pid);

// Waits until a process in some network namespace listens on TCP `port` (any address, IPv4
// or IPv6), by reading /proc/<pid>/net/tcp{,6}, which show that process's netns. For
// servers started in a pod: poll with a deadline instead of sleeping.
Result<void> waitForListener(pid_t pid, uint16_t port, std::chrono::milliseconds timeout);

}  // namespace sluice::lab
