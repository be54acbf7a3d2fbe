// The local lab: a mesh on one machine made of real kernel parts.
//
//   host netns:  bridge sluice<run>-br (198.18.0.1/15, fd00:5::1/64)
//                  |  veth sluice<run>n<i>
//   node netns:  sluice-<run>-<node>, eth0 = 198.18.0.<i+1>/15, fd00:5::<i+1>/64, forwarding on;
//                a /32 (/128) route to each of its pods via the pod's veth, and to every other
//                pod via the owning node's fabric address
//                  |  veth sluice<run>p<j>  (fe80::1 on the node's end)
//   pod netns:   sluice-<run>-<ns>-<pod>, eth0 = the pod's IPs from the YAML (/32, /128),
//                default routes via the node (its fabric IPv4, onlink; fe80::1)
//   cgroup v2:   <mount>/sluice-<run>/<node>/<ns>_<pod>
//
// Everything is created by `ip` (netlink) commands, fork/exec'd without a shell, plus cgroup
// mkdir and sysctl writes inside the namespaces; IPv6 addresses skip duplicate address
// detection so they are usable at once. A state file written before the first object is
// created names every object, so `down` removes all of it, after a crash of `up` too.
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Nothing outside the run's names is touched.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/lab_state.h"
#include "lab/plan.h"
#include "lab/process.h"
#include "core/result.h"

namespace sluice::lab {

// The cgroup v2 mount point (the first cgroup2 line of /proc/mounts): /sys/fs/cgroup on most
// machines, /sys/fs/cgroup/unified on hybrid ones.
Result<std::filesystem::path> findCgroup2Mount();
// The same, from the text of a /proc/mounts file (mount points escape ' ' as \040).
Result<std::filesystem::path> findCgroup2Mount(std::string_view proc_mounts);

struct UpOptions {
  // Test hook: stop after this many creation steps and return the half-built lab as if the
  // process had died there (state file in place, nothing rolled back).
  std::optional<size_t> crash_after_steps;
};

// Builds the lab `spec` describes. Refuses when a lab of that name is already up (its state
// file exists). On failure it removes whatever it made and returns an error naming the object
// and the command that failed.
Result<LabState> up(const LabSpec& spec, const UpOptions& options = {});

// Removes every object `state` names that still exists: first it kills every process in the
// lab's cgroups and network namespaces, then deletes the host veths and the bridge, the
// network namespaces (their veths go with them) and the cgroups, and last the state file.
// Idempotent. On failure it still removes what it can, keeps the state file and names what
// is left. Refuses any object whose name lacks the run's prefix (a damaged state file).
Result<void> down(const LabState& state);

// Loads <state_dir>/lab-<name>.json and removes that lab; success when there is no such file.
Result<void> downByName(const std::filesystem::path& state_dir, std::string_view name);

// One object of the lab and whether it exists now.
struct ObjectStatus {
  std::string owner;  // "lab", "node <name>" or "pod <ns>/<name>"
  std::string
      kind;  // "state file", "bridge", "veth", "netns", "cgroup", "run directory", "process"
  std::string name;
  bool exists = false;
};
std::vector<ObjectStatus> inspect(const LabState& state);

// Where a pod's (node's) processes run: its cgroup and its network namespace.
Placement placementOf(const PodHandle& pod);
Placement placementOf(const NodeHandle& node);

// Runs `argv` as pod `pod` ("ns/name", or a name unique in the lab) to completion.
Result<CommandResult> runInPod(const LabState& state, std::string_view pod,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Starts `argv` as pod `pod` and returns at once; the handle kills it when dropped.
Result<ChildProcess> startInPod(const LabState& state, std::string_view pod,
                                const std::vector<std::string>& argv,
                                const StartOptions& options = {});
// Replaces the current process with `argv` run as pod `pod`; returns only on failure.
Error execInPod(const LabState& state, std::string_view pod, const std::vector<std::string>& argv);

// The same for a node (its netns and its cgroup, the parent of its pods' cgroups): where a
// node's agent and ztunnel run.
Result<CommandResult> runInNode(const LabState& state, std::string_view node,
                                const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10));
Result<ChildProcess> startInNode(const LabState& state, std::string_view node,
                                 const std::vector<std::string>& argv,
                                 const StartOptions& options = {});
Error execInNode(const LabState& state, std::string_view node,
                 const std::vector<std::string>& argv);

// A lab for a test: up on create(), down in the destructor (also when the test fails or
// throws). Move-only.
class ScopedLab {
 public:
  static Result<ScopedLab> create(const LabSpec& spec, const UpOptions& options = {});
  // Adopts a lab that is already up (e.g. loaded from its state file).
  explicit ScopedLab(LabState state) : state_(std::move(state)) {}

  ScopedLab(ScopedLab&& other) noexcept : state_(std::exchange(other.state_, std::nullopt)) {}
  ScopedLab& operator=(ScopedLab&& other) noexcept;
  ScopedLab(const ScopedLab&) = delete;
  ScopedLab& operator=(const ScopedLab&) = delete;
  ~ScopedLab();

  const LabState& state() const { return *state_; }
  const LabState* operator->() const { return &*state_; }

  // Tears the lab down now and reports the outcome; the destructor then does nothing.
  Result<void> down();

 private:
  std::optional<LabState> state_;
};

}  // namespace sluice::lab
