// Starting, restarting and removing the lab's data plane (see data_plane.h).
#include "lab/data_plane.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include "core/inpod/pod_netns_file.h"
#include "lab/lab.h"
#include "lab/process.h"

namespace sluice::lab {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kAgentConnected = "ztunnel connected";
constexpr auto kStopTimeout = std::chrono::seconds(5);
constexpr const char* kPodNetnsFile = "pod-netns.json";

bool fileContains(const std::filesystem::path& path, std::string_view needle) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

std::string lastLines(const std::filesystem::path& path, size_t count) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > count) lines.erase(lines.begin());
  }
  std::string out;
  for (const std::string& kept : lines) out += "\n    " + kept;
  return out;
}

std::string failedProcess(const ProcessHandle& process, const std::string& why) {
  return process.describe() + " (pid " + std::to_string(process.pid) + ") " + why + "; log " +
         process.log.string() + ":" + lastLines(process.log, 8);
}

Placement placementFor(const LabState& state, const ProcessHandle& process) {
  if (process.on_node) {
    const NodeHandle* node = state.node(process.owner);
    return node != nullptr ? placementOf(*node) : Placement{};
  }
  auto pod = state.findPod(process.owner);
  return pod ? placementOf(**pod) : Placement{};
}

Result<void> launch(const LabState& state, ProcessHandle& process) {
  StartOptions options;
  options.output = process.log;
  options.environment = process.environment;
  options.new_session = true;  // daemons outlive `sluicectl lab up`
  auto child = ChildProcess::start(process.argv, placementFor(state, process), options);
  if (!child) return makeError(process.describe() + ": " + child.message());
  process.pid = child->detach();
  return success();
}

Result<void> mountBpffs(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return makeError("cannot create " + path.string() + ": " + error.message());
  if (::mount("bpf", path.c_str(), "bpf", 0, nullptr) != 0)
    return makeError("cannot mount a BPF filesystem at " + path.string() + ": " +
                     std::strerror(errno) + " (the agents pin their maps and links there)");
  return success();
}

std::vector<ProcessHandle> nodeProcesses(const LabState& state, const DataPlaneOptions& options) {
  std::vector<ProcessHandle> out;
  for (const NodeHandle& node : state.nodes) {
    NodeFiles files = nodeFiles(state, node.name);
    auto daemon = [&](std::string role, std::filesystem::path log) {
      ProcessHandle process;
      process.owner = node.name;
      process.on_node = true;
      process.role = std::move(role);
      process.log = std::move(log);
      return process;
    };
    ProcessHandle agent = daemon("agent", files.agent_log);
    agent.argv = {options.agent.string(),
                  "run",
                  "--node",
                  node.name,
                  "--config-dir",
                  options.config_dir.string(),
                  "--cgroup",
                  node.cgroup.string(),
                  "--pin-dir",
                  files.pin_dir.string(),
                  "--socket",
                  files.agent_socket.string(),
                  "--pod-netns",
                  (state.run_dir / kPodNetnsFile).string(),
                  "--local-acceleration",
                  options.local_acceleration ? "on" : "off"};
    agent.argv.insert(agent.argv.end(), options.agent_args.begin(), options.agent_args.end());

    ProcessHandle ztunnel = daemon("ztunnel", files.ztunnel_log);
    ztunnel.argv = {options.ztunnel.string(),
                    "--node",
                    node.name,
                    "--config-dir",
                    options.config_dir.string(),
                    "--ca-dir",
                    (state.run_dir / "ca").string(),
                    "--inpod-socket",
                    files.agent_socket.string(),
                    "--bpf-pin-dir",
                    files.pin_dir.string(),
                    "--workers",
                    "1",
                    "--access-log",
                    files.access_log.string()};
    ztunnel.argv.insert(ztunnel.argv.end(), options.ztunnel_args.begin(),
                        options.ztunnel_args.end());
    out.push_back(std::move(agent));
    out.push_back(std::move(ztunnel));
  }
  return out;
}

// The containers of the lab's pods, as the downward API would describe the pod to them.
// A waypoint pod's container: the lab's binary, CA and configuration.
Result<void> resolveWaypoint(std::vector<std::string>& argv, const LabState& state,
                             const DataPlaneOptions& options) {
  if (argv.empty() || argv[0] != "sluice-waypoint") return success();
  if (options.waypoint.empty())
    return makeError(
        "a container runs sluice-waypoint, but no sluice-waypoint binary was found "
        "beside sluicectl (build the sluice-waypoint target)");
  argv[0] = options.waypoint.string();
  auto has = [&](std::string_view flag) {
    return std::find(argv.begin(), argv.end(), flag) != argv.end();
  };
  if (!has("--ca-dir")) argv.insert(argv.end(), {"--ca-dir", (state.run_dir / "ca").string()});
  if (!has("--config-dir")) argv.insert(argv.end(), {"--config-dir", options.config_dir.string()});
  return success();
}

std::vector<ProcessHandle> containerProcesses(const LabState& state, const config::Snapshot& pods,
                                              std::vector<std::vector<uint16_t>>& ports) {
  std::vector<ProcessHandle> out;
  for (const PodHandle& handle : state.pods) {
    const config::Pod* pod = pods.pod(handle.ns, handle.name);
    if (pod == nullptr) continue;
    for (size_t i = 0; i < pod->containers.size(); ++i) {
      const config::Container& container = pod->containers[i];
      if (container.command.empty() && container.args.empty()) continue;
      ProcessHandle process;
      process.owner = handle.key();
      process.role = container.name.empty() ? "container-" + std::to_string(i) : container.name;
      process.argv = container.command.empty() ? container.args : container.command;
      if (!container.command.empty())
        process.argv.insert(process.argv.end(), container.args.begin(), container.args.end());
      process.environment = {"POD_NAME=" + handle.name, "POD_NAMESPACE=" + handle.ns,
                             "NODE_NAME=" + handle.node};
      if (!handle.ips.empty()) process.environment.push_back("POD_IP=" + handle.ips[0].to_string());
      process.environment.insert(process.environment.end(), container.env.begin(),
                                 container.env.end());
      process.log = state.run_dir / (handle.ns + "_" + handle.name + "_" + process.role + ".log");
      out.push_back(std::move(process));
      ports.push_back(container.ports);
    }
  }
  return out;
}

Result<void> waitForAgent(const ProcessHandle& agent, Clock::time_point deadline) {
  while (!fileContains(agent.log, kAgentConnected)) {
    if (!processAlive(agent.pid)) return makeError(failedProcess(agent, "exited"));
    if (Clock::now() >= deadline)
      return makeError(failedProcess(agent, "did not report its ztunnel connected"));
    // A foreign process's log line has no event to wait on: poll it, with a deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return success();
}

}  // namespace

std::filesystem::path runDirFor(const LabState& state) {
  std::filesystem::path dir = state.state_path;
  dir.replace_extension(".d");
  return dir;
}

NodeFiles nodeFiles(const LabState& state, std::string_view node) {
  std::string name(node);
  return {.agent_socket = state.run_dir / (name + ".sock"),
          .agent_log = state.run_dir / (name + "-agent.log"),
          .ztunnel_log = state.run_dir / (name + "-ztunnel.log"),
          .access_log = state.run_dir / (name + "-access.log"),
          .pin_dir = state.bpffs / name};
}

Result<void> findDataPlaneBinaries(const std::filesystem::path& self, DataPlaneOptions& options) {
  std::filesystem::path dir = self.parent_path();
  auto pick = [&](std::filesystem::path& out, const std::string& name,
                  const std::string& build_folder) -> Result<void> {
    if (!out.empty()) return success();
    for (const std::filesystem::path& candidate :
         {dir / name, dir.parent_path() / build_folder / name}) {
      if (::access(candidate.c_str(), X_OK) == 0) {
        out = candidate;
        return success();
      }
    }
    return makeError("cannot find " + name + " beside " + self.string() + " (looked in " +
                     dir.string() + " and " + (dir.parent_path() / build_folder).string() +
                     "): build it, or start the lab with --no-data-plane");
  };
  if (auto found = pick(options.agent, "sluice-agent", "agent"); !found) return found;
  if (auto found = pick(options.ztunnel, "sluice-ztunnel", "ztunnel"); !found) return found;
  (void)pick(options.waypoint, "sluice-waypoint", "waypoint");  // only needed by waypoint pods
  return success();
}

Result<void> startDataPlane(LabState& state, const config::Snapshot& pods,
                            const DataPlaneOptions& options) {
  if (options.config_dir.empty() || !std::filesystem::is_directory(options.config_dir))
    return makeError("the data plane watches one configuration directory: \"" +
                     options.config_dir.string() + "\" is not a directory");
  state.run_dir = runDirFor(state);
  state.bpffs = state.run_dir / "bpf";
  std::error_code error;
  std::filesystem::create_directories(state.run_dir / "ca", error);
  if (error) return makeError("cannot create " + state.run_dir.string() + ": " + error.message());

  std::vector<std::vector<uint16_t>> container_ports;
  std::vector<ProcessHandle> daemons = nodeProcesses(state, options);
  std::vector<ProcessHandle> containers = containerProcesses(state, pods, container_ports);
  for (ProcessHandle& container : containers)
    if (auto resolved = resolveWaypoint(container.argv, state, options); !resolved)
      return makeError("pod " + container.owner + " container " + container.role + ": " +
                       resolved.message());
  state.processes = daemons;
  state.processes.insert(state.processes.end(), containers.begin(), containers.end());
  // Recorded before anything is mounted or started, so `down` finds all of it after a crash.
  if (auto saved = state.save(); !saved) return saved;
  // The agents find each pod's namespace here (the lab has no /proc to search for pod UIDs).
  inpod::PodNetnsPaths netns_paths;
  for (const PodHandle& pod : state.pods) netns_paths[pod.key()] = pod.netns_path;
  if (auto written = inpod::writePodNetnsFile(state.run_dir / kPodNetnsFile, netns_paths); !written)
    return written;
  if (auto mounted = mountBpffs(state.bpffs); !mounted) return mounted;
  for (const NodeHandle& node : state.nodes) {
    std::filesystem::create_directories(nodeFiles(state, node.name).pin_dir, error);
    if (error) return makeError("cannot create the pin directory of " + node.name);
  }

  for (ProcessHandle& process : state.processes) {
    auto started = launch(state, process);
    if (!started) {
      (void)state.save();
      return started;
    }
  }
  if (auto saved = state.save(); !saved) return saved;

  Clock::time_point deadline = Clock::now() + options.ready_timeout;
  for (const ProcessHandle& process : state.processes)
    if (process.role == "agent")
      if (auto ready = waitForAgent(process, deadline); !ready) return ready;
  size_t first_container = daemons.size();
  for (size_t i = 0; i < container_ports.size(); ++i) {
    const ProcessHandle& process = state.processes[first_container + i];
    for (uint16_t port : container_ports[i]) {
      auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto listening = waitForListener(process.pid, port, std::max(remaining, {}));
      if (!listening) return makeError(failedProcess(process, listening.message()));
    }
  }
  return success();
}

Result<ProcessHandle> restartProcess(LabState& state, std::string_view owner,
                                     std::string_view role) {
  ProcessHandle* process = state.process(owner, role);
  if (process == nullptr) {
    std::string known;
    for (const ProcessHandle& p : state.processes)
      known += (known.empty() ? "" : ", ") + p.owner + " " + p.role;
    return makeError("lab " + state.name + " has no process \"" + std::string(role) + "\" on " +
                     std::string(owner) + (known.empty() ? "" : " (it has: " + known + ")"));
  }
  if (auto stopped = stopProcess(process->pid, SIGTERM, kStopTimeout); !stopped)
    return makeError(process->describe() + ": " + stopped.message());
  if (auto started = launch(state, *process); !started) return started.error();
  if (auto saved = state.save(); !saved) return saved.error();
  return *process;
}

Result<void> removeRunDir(const LabState& state) {
  if (state.run_dir.empty()) return success();
  if (!state.bpffs.empty() && ::umount2(state.bpffs.c_str(), MNT_DETACH) != 0 && errno != EINVAL &&
      errno != ENOENT)
    return makeError("cannot unmount " + state.bpffs.string() + ": " + std::strerror(errno));
  // Only the directory the lab made for itself: beside its state file, named after it.
  if (state.run_dir != runDirFor(state))
    return makeError("not removing " + state.run_dir.string() +
                     ": it is not this lab's run directory (is the state file damaged?)");
  std::error_code error;
  std::filesystem::remove_all(state.run_dir, error);
  if (error) return makeError("cannot remove " + state.run_dir.string() + ": " + error.message());
  return success();
}

}  // namespace sluice::lab
