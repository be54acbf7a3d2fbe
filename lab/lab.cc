// Bringing a lab up, running things in it, and the RAII wrapper. Teardown is in teardown.cc.
#include "lab/lab.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "lab/host.h"

namespace sluice::lab {
namespace {

using boost::asio::ip::address;

// One creation step; its error names the object it makes and the command that failed.
using Step = std::function<Result<void>()>;

class StepList {
 public:
  void ip(std::string object, std::vector<std::string> args) {
    steps_.push_back(
        [object = std::move(object), args = std::move(args)] { return host::ip(object, args); });
  }
  void sysctl(std::filesystem::path netns, std::string key, std::string value) {
    steps_.push_back([netns = std::move(netns), key = std::move(key), value = std::move(value)] {
      return host::writeSysctl(netns, key, value);
    });
  }
  void mkdir(std::filesystem::path dir) {
    steps_.push_back([dir = std::move(dir)]() -> Result<void> {
      if (::mkdir(dir.c_str(), 0755) != 0)
        return makeError("cgroup " + dir.string() + ": mkdir failed: " + std::strerror(errno));
      return success();
    });
  }
  std::vector<Step>& steps() { return steps_; }

 private:
  std::vector<Step> steps_;
};

std::string withPrefix(const address& ip) { return ip.to_string() + (ip.is_v4() ? "/32" : "/128"); }

// The IPv6 conf keys that make addresses usable at once: no duplicate address detection for
// interfaces created in this netns from now on.
void noDad(StepList& steps, const std::filesystem::path& netns) {
  steps.sysctl(netns, "net/ipv6/conf/default/accept_dad", "0");
  steps.sysctl(netns, "net/ipv6/conf/all/accept_dad", "0");
}

StepList planSteps(const LabState& state) {
  StepList steps;
  steps.mkdir(state.cgroup_root);
  for (const NodeHandle& node : state.nodes) steps.mkdir(node.cgroup);
  for (const PodHandle& pod : state.pods) steps.mkdir(pod.cgroup);

  for (const NodeHandle& node : state.nodes) {
    std::string what = "node " + node.name + " netns " + node.netns;
    steps.ip(what, {"netns", "add", node.netns});
    noDad(steps, node.netns_path);
    steps.sysctl(node.netns_path, "net/ipv4/ip_forward", "1");
    steps.sysctl(node.netns_path, "net/ipv6/conf/all/forwarding", "1");
    steps.ip(what, {"-n", node.netns, "link", "set", "lo", "up"});
  }
  for (const PodHandle& pod : state.pods) {
    std::string what = "pod " + pod.key() + " netns " + pod.netns;
    steps.ip(what, {"netns", "add", pod.netns});
    noDad(steps, pod.netns_path);
    steps.ip(what, {"-n", pod.netns, "link", "set", "lo", "up"});
  }

  std::string bridge = "bridge " + state.bridge;
  steps.ip(bridge, {"link", "add", "name", state.bridge, "type", "bridge", "forward_delay", "0",
                    "mcast_snooping", "0"});
  steps.sysctl({}, "net/ipv6/conf/" + state.bridge + "/accept_dad", "0");
  steps.ip(bridge,
           {"addr", "add", state.bridge_ipv4.to_string() + "/" + std::to_string(state.ipv4_prefix),
            "dev", state.bridge});
  steps.ip(bridge,
           {"addr", "add", state.bridge_ipv6.to_string() + "/" + std::to_string(state.ipv6_prefix),
            "dev", state.bridge, "nodad"});
  steps.ip(bridge, {"link", "set", state.bridge, "up"});

  for (const NodeHandle& node : state.nodes) {
    std::string what = "node " + node.name + " veth " + node.host_veth;
    steps.ip(what, {"link", "add", node.host_veth, "type", "veth", "peer", "name",
                    node.fabric_interface, "netns", node.netns});
    // A bridge port needs no IPv6 addresses of its own.
    steps.sysctl({}, "net/ipv6/conf/" + node.host_veth + "/disable_ipv6", "1");
    steps.ip(what, {"link", "set", node.host_veth, "master", state.bridge, "up"});
    steps.ip(what, {"-n", node.netns, "addr", "add",
                    node.ipv4.to_string() + "/" + std::to_string(state.ipv4_prefix), "dev",
                    node.fabric_interface});
    steps.ip(what, {"-n", node.netns, "addr", "add",
                    node.ipv6.to_string() + "/" + std::to_string(state.ipv6_prefix), "dev",
                    node.fabric_interface, "nodad"});
    steps.ip(what, {"-n", node.netns, "link", "set", node.fabric_interface, "up"});
  }

  for (const PodHandle& pod : state.pods) {
    const NodeHandle& node = *state.node(pod.node);
    std::string what = "pod " + pod.key() + " veth " + pod.node_veth;
    steps.ip(what, {"-n", node.netns, "link", "add", pod.node_veth, "type", "veth", "peer", "name",
                    pod.interface, "netns", pod.netns});
    steps.ip(what, {"-n", node.netns, "addr", "add", std::string(kPodGatewayIPv6) + "/64", "dev",
                    pod.node_veth, "nodad"});
    steps.ip(what, {"-n", node.netns, "link", "set", pod.node_veth, "up"});
    for (const address& ip : pod.ips) {
      std::vector<std::string> add{"-n",           pod.netns, "addr",       "add",
                                   withPrefix(ip), "dev",     pod.interface};
      if (ip.is_v6()) add.push_back("nodad");
      steps.ip(what, add);
    }
    steps.ip(what, {"-n", pod.netns, "link", "set", pod.interface, "up"});
    if (pod.ipv4() != nullptr)
      steps.ip(what, {"-n", pod.netns, "-4", "route", "add", "default", "via",
                      node.ipv4.to_string(), "dev", pod.interface, "onlink"});
    if (pod.ipv6() != nullptr)
      steps.ip(what, {"-n", pod.netns, "-6", "route", "add", "default", "via",
                      std::string(kPodGatewayIPv6), "dev", pod.interface});
    for (const address& ip : pod.ips) {
      steps.ip(what, {"-n", node.netns, "route", "add", withPrefix(ip), "dev", pod.node_veth});
      for (const NodeHandle& other : state.nodes) {
        if (other.name == node.name) continue;
        const address& via = ip.is_v4() ? node.ipv4 : node.ipv6;
        steps.ip("pod " + pod.key() + " route on node " + other.name,
                 {"-n", other.netns, "route", "add", withPrefix(ip), "via", via.to_string(), "dev",
                  other.fabric_interface});
      }
    }
  }
  return steps;
}

// Fails early, before anything is made, with what to do about it.
Result<void> checkHost() {
  if (::geteuid() != 0)
    return makeError("the lab needs root (network namespaces, veths, cgroups): run as root");
  if (auto ip = findExecutable("ip"); !ip)
    return makeError("the lab needs iproute2's `ip`: " + ip.message());
  return success();
}

// True when an object with this run id already exists (two runs drew the same id).
bool runIdTaken(const LabState& state) {
  if (host::linkExists(state.bridge)) return true;
  if (std::filesystem::exists(state.cgroup_root)) return true;
  for (const NodeHandle& node : state.nodes)
    if (std::filesystem::exists(node.netns_path)) return true;
  for (const PodHandle& pod : state.pods)
    if (std::filesystem::exists(pod.netns_path)) return true;
  return false;
}

}  // namespace

Result<std::filesystem::path> findCgroup2Mount(std::string_view proc_mounts) {
  std::istringstream lines{std::string(proc_mounts)};
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string device, mount_point, type;
    if (!(fields >> device >> mount_point >> type) || type != "cgroup2") continue;
    // /proc/mounts escapes space, tab, newline and backslash as \ooo.
    std::string decoded;
    for (size_t i = 0; i < mount_point.size(); ++i) {
      if (mount_point[i] == '\\' && i + 3 < mount_point.size()) {
        decoded += static_cast<char>(std::stoi(mount_point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        decoded += mount_point[i];
      }
    }
    return std::filesystem::path(decoded);
  }
  return makeError(
      "no cgroup2 file system is mounted (no cgroup2 line in /proc/mounts): the "
      "lab needs cgroup v2, e.g. `mount -t cgroup2 none /sys/fs/cgroup`");
}

Result<std::filesystem::path> findCgroup2Mount() {
  std::ifstream in("/proc/mounts");
  if (!in) return makeError("cannot read /proc/mounts");
  std::stringstream text;
  text << in.rdbuf();
  return findCgroup2Mount(text.str());
}

Result<LabState> up(const LabSpec& spec, const UpOptions& options) {
  if (auto ok = checkLabName(spec.name); !ok) return ok.error();
  std::filesystem::path state_path = statePath(spec.state_dir, spec.name);
  if (std::filesystem::exists(state_path))
    return makeError("lab " + spec.name + " is already up (state file " + state_path.string() +
                     "): run `sluicectl lab down --name " + spec.name +
                     "` first, or pick "
                     "another --name");
  if (auto ok = checkHost(); !ok) return ok.error();
  auto mount = findCgroup2Mount();
  if (!mount) return mount.error();

  LabSpec planned = spec;
  Result<LabState> state = makeError("no run id tried");
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (spec.run_id.empty()) planned.run_id = randomRunId();
    state = planLab(planned, *mount);
    if (!state) return state.error();
    if (!runIdTaken(*state)) break;
    if (!spec.run_id.empty())
      return makeError("run id " + spec.run_id + " is in use by another lab on this machine");
    state = makeError("no free run id after 8 tries");
  }
  if (!state) return state.error();

  // The state file comes first, so that a crash from here on leaves a lab `down` can remove.
  if (auto saved = state->save(); !saved) return saved.error();
  StepList steps = planSteps(*state);
  size_t done = 0;
  for (Step& step : steps.steps()) {
    if (options.crash_after_steps && done == *options.crash_after_steps) return state;
    auto ok = step();
    if (!ok) {
      std::string message = "lab " + spec.name + " up failed: " + ok.message();
      auto removed = down(*state);
      message += removed ? "; what it had created is removed again"
                         : "; removing what it had created failed too: " + removed.message();
      return makeError(message);
    }
    ++done;
  }
  return state;
}

Placement placementOf(const PodHandle& pod) { return {pod.cgroup, pod.netns_path}; }
Placement placementOf(const NodeHandle& node) { return {node.cgroup, node.netns_path}; }

namespace {

Result<Placement> podPlacement(const LabState& state, std::string_view pod) {
  auto found = state.findPod(pod);
  if (!found) return found.error();
  return placementOf(**found);
}

Result<Placement> nodePlacement(const LabState& state, std::string_view node) {
  const NodeHandle* found = state.node(node);
  if (found == nullptr)
    return makeError("lab " + state.name + " has no node \"" + std::string(node) + "\"");
  return placementOf(*found);
}

}  // namespace

Result<CommandResult> runInPod(const LabState& state, std::string_view pod,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
  auto where = podPlacement(state, pod);
  if (!where) return where.error();
  return runCommand(argv, *where, timeout);
}

Result<ChildProcess> startInPod(const LabState& state, std::string_view pod,
                                const std::vector<std::string>& argv, const StartOptions& options) {
  auto where = podPlacement(state, pod);
  if (!where) return where.error();
  return ChildProcess::start(argv, *where, options);
}

Error execInPod(const LabState& state, std::string_view pod, const std::vector<std::string>& argv) {
  auto where = podPlacement(state, pod);
  if (!where) return where.error();
  return execIn(argv, *where);
}

Result<CommandResult> runInNode(const LabState& state, std::string_view node,
                                const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) {
  auto where = nodePlacement(state, node);
  if (!where) return where.error();
  return runCommand(argv, *where, timeout);
}

Result<ChildProcess> startInNode(const LabState& state, std::string_view node,
                                 const std::vector<std::string>& argv,
                                 const StartOptions& options) {
  auto where = nodePlacement(state, node);
  if (!where) return where.error();
  return ChildProcess::start(argv, *where, options);
}

Error execInNode(const LabState& state, std::string_view node,
                 const std::vector<std::string>& argv) {
  auto where = nodePlacement(state, node);
  if (!where) return where.error();
  return execIn(argv, *where);
}

Result<ScopedLab> ScopedLab::create(const LabSpec& spec, const UpOptions& options) {
  auto state = up(spec, options);
  if (!state) return state.error();
  return ScopedLab(std::move(*state));
}

ScopedLab& ScopedLab::operator=(ScopedLab&& other) noexcept {
  if (this != &other) {
    (void)down();
    state_ = std::exchange(other.state_, std::nullopt);
  }
  return *this;
}

ScopedLab::~ScopedLab() {
  auto removed = down();
  if (!removed) std::cerr << "sluice lab: " << removed.message() << "\n";
}

Result<void> ScopedLab::down() {
  if (!state_) return success();
  auto removed = lab::down(*state_);
  state_.reset();
  return removed;
}

}  // namespace sluice::lab
