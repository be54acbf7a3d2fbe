// The lab's data plane: what `sluicectl lab up` runs once the network exists. Each node gets
// its agent and its ztunnel (in the node's netns and cgroup, as the DaemonSet's containers
// would run), each pod its containers' commands (in the pod's netns and cgroup).
//
// Everything lives under one run directory beside the state file (configuration directory by
// reference, CA, agent sockets, logs) and a private BPF filesystem mounted there for the pins,
// so the machine's /sys/fs/bpf is never touched. The processes are recorded in the state file
// with their command lines: `down` kills them (with everything else in the lab's cgroups and
// namespaces), `restart` replays one.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/snapshot.h"
#include "lab/lab_state.h"
#include "core/result.h"

namespace sluice::lab {

struct DataPlaneOptions {
  std::filesystem::path agent;    // the sluice-agent binary
  std::filesystem::path ztunnel;  // the sluice-ztunnel binary
  // The sluice-waypoint binary, for pods whose container command is the bare name
  // "sluice-waypoint" (a waypoint Deployment's pod); empty when none was found.
  std::filesystem::path waypoint;
  // The directory of YAML the agents and ztunnels watch (edit it to label a namespace).
  std::filesystem::path config_dir;
  bool local_acceleration = false;
  std::vector<std::string> agent_args;    // appended to every agent's command line
  std::vector<std::string> ztunnel_args;  // appended to every ztunnel's command line
  // How long `start` waits for each ztunnel to take its pods, and each container port.
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
};

// <state_dir>/lab-<name>.d
std::filesystem::path runDirFor(const LabState& state);

// Where a node's files are: its agent socket, logs and access log.
struct NodeFiles {
  std::filesystem::path agent_socket, agent_log, ztunnel_log, access_log, pin_dir;
};
NodeFiles nodeFiles(const LabState& state, std::string_view node);

// Finds sluice-agent and sluice-ztunnel (and sluice-waypoint, if there) for a sluicectl at
// `self`: beside it (an install), or in the build tree layout (<build>/cli/sluicectl,
// <build>/agent/..., <build>/ztunnel/..., <build>/waypoint/...).
Result<void> findDataPlaneBinaries(const std::filesystem::path& self, DataPlaneOptions& options);

// A container whose command is "sluice-waypoint" runs that binary with the lab's CA
// (--ca-dir) and configuration directory (--config-dir) added unless it names its own.
//
// Starts the data plane of a lab that is up (no processes yet): records every process in the
// state file before it starts, then waits until each node's agent reports its ztunnel
// connected and each container's declared ports listen. On failure the processes keep
// running (`down` removes them) and the error names the one that failed and its log.
Result<void> startDataPlane(LabState& state, const config::Snapshot& pods,
                            const DataPlaneOptions& options);

// Stops a recorded process (SIGTERM, then SIGKILL after 5 s) and starts it again with the same
// command line; the new pid goes into the state file. `role` is "agent", "ztunnel" or a
// container name; `owner` a node name or a pod (NAMESPACE/NAME).
Result<ProcessHandle> restartProcess(LabState& state, std::string_view owner,
                                     std::string_view role);

// Unmounts the lab's BPF filesystem and removes its run directory (after its processes are
// gone). Idempotent.
Result<void> removeRunDir(const LabState& state);

}  // namespace sluice::lab
