// Removing a lab (also a half-built one) and reporting what of it exists.
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lab/data_plane.h"
#include "lab/host.h"
#include "lab/lab.h"

namespace sluice::lab {
namespace {

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// `path` is strictly below `root`, without ".." tricks.
bool isBelow(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto relative = path.lexically_normal().lexically_relative(root.lexically_normal());
  return !relative.empty() && *relative.begin() != ".." && *relative.begin() != ".";
}

// What down() may touch: only names that carry this run's prefix. A damaged or hand-edited
// state file must never make it delete someone else's interface or cgroup.
class Guard {
 public:
  explicit Guard(const LabState& state)
      : compact_("sluice" + state.run_id),
        dashed_("sluice-" + state.run_id + "-"),
        cgroup_root_(state.cgroup_root) {
    run_ok_ = state.run_id.size() == kRunIdLength &&
              state.cgroup_root.filename() == "sluice-" + state.run_id;
  }

  bool link(std::string_view name) const { return run_ok_ && startsWith(name, compact_); }
  bool netns(std::string_view name, const std::filesystem::path& path) const {
    return run_ok_ && startsWith(name, dashed_) &&
           path == std::filesystem::path(kNetnsDir) / std::string(name);
  }
  bool cgroup(const std::filesystem::path& path) const {
    return run_ok_ && (path == cgroup_root_ || isBelow(path, cgroup_root_));
  }

 private:
  std::string compact_, dashed_;
  std::filesystem::path cgroup_root_;
  bool run_ok_ = false;
};

class Problems {
 public:
  void add(std::string problem) { list_.push_back(std::move(problem)); }
  void add(const Result<void>& result) {
    if (!result) add(result.message());
  }
  bool empty() const { return list_.empty(); }
  std::string text() const {
    std::string out;
    for (const std::string& problem : list_) out += "\n  " + problem;
    return out;
  }

 private:
  std::vector<std::string> list_;
};

constexpr auto kKillTimeout = std::chrono::seconds(5);

}  // namespace

Result<void> down(const LabState& state) {
  Guard guard(state);
  Problems problems;
  auto refuse = [&](std::string_view kind, const std::string& name) {
    problems.add("not removing " + std::string(kind) + " " + name + ": it lacks run " +
                 state.run_id + "'s prefix (is the state file damaged?)");
  };

  // 1. Processes first: a process inside keeps a netns (and its veths) alive and a cgroup busy.
  if (std::filesystem::exists(state.cgroup_root)) {
    if (guard.cgroup(state.cgroup_root))
      problems.add(host::killCgroup(state.cgroup_root, kKillTimeout));
    else
      refuse("cgroup", state.cgroup_root.string());
  }
  std::vector<std::pair<std::string, std::filesystem::path>> namespaces;
  for (const PodHandle& pod : state.pods) namespaces.emplace_back(pod.netns, pod.netns_path);
  for (const NodeHandle& node : state.nodes) namespaces.emplace_back(node.netns, node.netns_path);
  for (const auto& [name, path] : namespaces)
    if (guard.netns(name, path) && std::filesystem::exists(path)) host::killProcessesIn(path);

  // 2. Host-side links, so that `ip link` is clean at once (netns teardown is asynchronous).
  for (const NodeHandle& node : state.nodes) {
    if (!host::linkExists(node.host_veth)) continue;
    if (!guard.link(node.host_veth)) {
      refuse("veth", node.host_veth);
      continue;
    }
    problems.add(
        host::ip("node " + node.name + " veth " + node.host_veth, {"link", "del", node.host_veth}));
  }
  if (host::linkExists(state.bridge)) {
    if (guard.link(state.bridge) && state.bridge == "sluice" + state.run_id + "-br")
      problems.add(host::ip("bridge " + state.bridge, {"link", "del", state.bridge}));
    else
      refuse("bridge", state.bridge);
  }

  // 3. Network namespaces: the pods' and nodes' veths go with them.
  for (const auto& [name, path] : namespaces) {
    if (!std::filesystem::exists(path)) continue;
    if (!guard.netns(name, path)) {
      refuse("netns", name);
      continue;
    }
    problems.add(host::ip("netns " + name, {"netns", "del", name}));
  }

  // 4. cgroups, leaves first.
  std::vector<std::filesystem::path> cgroups;
  for (const PodHandle& pod : state.pods) cgroups.push_back(pod.cgroup);
  for (const NodeHandle& node : state.nodes) cgroups.push_back(node.cgroup);
  cgroups.push_back(state.cgroup_root);
  for (const std::filesystem::path& cgroup : cgroups) {
    if (!std::filesystem::exists(cgroup)) continue;
    if (!guard.cgroup(cgroup)) {
      refuse("cgroup", cgroup.string());
      continue;
    }
    if (::rmdir(cgroup.c_str()) != 0 && errno != ENOENT)
      problems.add("cgroup " + cgroup.string() + ": rmdir failed: " + std::strerror(errno));
  }

  // 5. The data plane's run directory and BPF filesystem (its processes are gone by now:
  //    they lived in the lab's cgroups).
  problems.add(removeRunDir(state));

  // 6. The state file goes only when nothing else is left, so `down` can be run again.
  if (!problems.empty())
    return makeError("lab " + state.name + " down left objects behind (state file " +
                     state.state_path.string() + " kept; run down again):" + problems.text());
  std::error_code error;
  std::filesystem::remove(state.state_path, error);
  if (error)
    return makeError("lab " + state.name + ": cannot remove state file " +
                     state.state_path.string() + ": " + error.message());
  return success();
}

Result<void> downByName(const std::filesystem::path& state_dir, std::string_view name) {
  if (auto ok = checkLabName(name); !ok) return ok.error();
  std::filesystem::path path = statePath(state_dir, name);
  if (!std::filesystem::exists(path)) return success();
  auto state = LabState::load(path);
  if (!state) return state.error();
  return down(*state);
}

std::vector<ObjectStatus> inspect(const LabState& state) {
  std::vector<ObjectStatus> out;
  auto add = [&](std::string owner, std::string kind, std::string name, bool exists) {
    out.push_back({std::move(owner), std::move(kind), std::move(name), exists});
  };
  add("lab", "state file", state.state_path.string(), std::filesystem::exists(state.state_path));
  add("lab", "bridge", state.bridge, host::linkExists(state.bridge));
  add("lab", "cgroup", state.cgroup_root.string(), std::filesystem::exists(state.cgroup_root));
  if (!state.run_dir.empty())
    add("lab", "run directory", state.run_dir.string(), std::filesystem::exists(state.run_dir));
  auto addProcesses = [&](const std::string& owner, std::string_view name, bool on_node) {
    for (const ProcessHandle& process : state.processes)
      if (process.on_node == on_node && process.owner == name)
        add(owner, "process", process.role + " (pid " + std::to_string(process.pid) + ")",
            processAlive(process.pid));
  };
  for (const NodeHandle& node : state.nodes) {
    std::string owner = "node " + node.name;
    add(owner, "netns", node.netns, std::filesystem::exists(node.netns_path));
    add(owner, "veth", node.host_veth, host::linkExists(node.host_veth));
    add(owner, "cgroup", node.cgroup.string(), std::filesystem::exists(node.cgroup));
    addProcesses(owner, node.name, true);
  }
  for (const PodHandle& pod : state.pods) {
    std::string owner = "pod " + pod.key();
    bool netns = std::filesystem::exists(pod.netns_path);
    add(owner, "netns", pod.netns, netns);
    const NodeHandle* node = state.node(pod.node);
    bool veth = node != nullptr && std::filesystem::exists(node->netns_path) &&
                host::linkExistsIn(node->netns_path, pod.node_veth);
    add(owner, "veth", pod.node_veth, veth);
    add(owner, "cgroup", pod.cgroup.string(), std::filesystem::exists(pod.cgroup));
    addProcesses(owner, pod.key(), false);
  }
  return out;
}

}  // namespace sluice::lab
