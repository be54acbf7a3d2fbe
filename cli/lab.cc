// `sluicectl lab`: a mesh on this machine (bridge, node and pod netns, cgroups) built from the
// same YAML the file source reads, torn down from its state file, and commands run as a pod.
#include "lab/lab.h"

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include "cli/command.h"
#include "lab/data_plane.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kUsage =
    R"(usage: sluicectl lab up --config DIR [--name NAME] [--state-dir DIR] [data plane options]
       sluicectl lab up --config PATH... --no-data-plane [--name NAME] [--state-dir DIR]
       sluicectl lab down [--name NAME] [--state-dir DIR]
       sluicectl lab restart [--name NAME] [--state-dir DIR] (--node NODE | POD) PROCESS
       sluicectl lab status [--name NAME] [--state-dir DIR] [--json]
       sluicectl lab exec [--name NAME] [--state-dir DIR] POD -- COMMAND [ARGS...]
       sluicectl lab exec [--name NAME] [--state-dir DIR] --node NODE -- COMMAND [ARGS...]

Builds a mesh on this machine out of real kernel parts (needs root):
  - a bridge sluice<run>-br in this netns with 198.18.0.1/15 and fd00:5::1/64;
  - a netns sluice-<run>-<node> per node (spec.nodeName of the pods) on that bridge, with
    198.18.0.2, .3, ... and fd00:5::2, ::3, ..., forwarding between its pods and the fabric;
  - a netns sluice-<run>-<ns>-<pod> per pod with the pod's status.podIPs (which must lie in
    198.18.0.0/15 or fd00:5::/64), routed through its node;
  - a cgroup v2 directory <cgroup2>/sluice-<run>/<node>/<ns>_<pod> per pod;
  - the data plane: on each node sluice-agent and sluice-ztunnel (in the node's netns and
    cgroup, watching the --config directory: edit it to label a namespace), and in each pod
    its containers' command + args (spec.containers[], with POD_NAME, POD_NAMESPACE, POD_IP,
    NODE_NAME and the literal env values set); up returns once every agent has its ztunnel
    connected and every declared containerPort listens. Files (logs, CA, agent sockets, a
    private BPF filesystem for the pins) live in <state-dir>/lab-<name>.d/.
Every name carries the run-unique prefix; the state file records them all, so `down`
removes everything, also after `up` was interrupted, and can be run again safely.

commands:
  up       create the lab from YAML files or directories (--config, repeatable)
  down     kill the lab's processes and remove all its objects and its state file
  restart  stop one process of the data plane (SIGTERM) and start it again with the same
           command line: PROCESS is agent or ztunnel with --node, a container name with POD
  status   list the lab's nodes, pods, addresses, netns and cgroups, and whether each exists
           (exit 1 when something is missing); --json prints the state file
  exec     run COMMAND as POD (NAMESPACE/NAME, or a NAME unique in the lab): it joins the
           pod's cgroup, then enters the pod's netns; --node runs it on a node instead

options:
  --name NAME       which lab (default "default"); several labs can be up at once
  --state-dir DIR   where state files live (default /run/sluice)
  -h, --help        print this help

data plane options (up):
  --no-data-plane             only the network: start no agent, ztunnel or container
  --local-acceleration on|off the agents' local-hop acceleration (default off)
  --agent PATH, --ztunnel PATH  the binaries (default: beside sluicectl, or its build tree)
  --agent-arg ARG, --ztunnel-arg ARG  one more argument for every agent (ztunnel); repeatable
)";

struct Options {
  std::string verb;
  std::string name{lab::kDefaultLabName};
  std::filesystem::path state_dir{lab::kDefaultStateDir};
  std::vector<std::filesystem::path> config;
  bool json = false;
  std::string node;
  std::string pod;
  std::string process;               // restart
  std::vector<std::string> command;  // after "--"
  bool data_plane = true;
  lab::DataPlaneOptions data_plane_options;
};

std::string addresses(const std::vector<boost::asio::ip::address>& ips) {
  std::string out;
  for (const auto& ip : ips) out += (out.empty() ? "" : " ") + ip.to_string();
  return out;
}

// Parses argv; nullopt after printing what was wrong (or the help) to `io`.
std::optional<Options> parse(std::span<const std::string> args, Io io, int& exit_code) {
  Options options;
  auto usageError = [&](const std::string& message) {
    io.err << "sluicectl lab: " << message << "\n\n" << kUsage;
    exit_code = kExitUsage;
    return std::nullopt;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string text;
    if (arg == "-h" || arg == "--help") {
      io.out << kUsage;
      exit_code = kExitOk;
      return std::nullopt;
    } else if (arg == "--") {
      options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    } else if (arg == "--name") {
      if (!value(options.name)) return usageError("--name needs a value");
    } else if (arg == "--state-dir") {
      if (!value(text)) return usageError("--state-dir needs a value");
      options.state_dir = text;
    } else if (arg == "--config") {
      if (!value(text)) return usageError("--config needs a value");
      options.config.emplace_back(text);
    } else if (arg == "--node") {
      if (!value(options.node)) return usageError("--node needs a value");
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--no-data-plane") {
      options.data_plane = false;
    } else if (arg == "--local-acceleration") {
      if (!value(text) || (text != "on" && text != "off"))
        return usageError("--local-acceleration needs on or off");
      options.data_plane_options.local_acceleration = text == "on";
    } else if (arg == "--agent" || arg == "--ztunnel") {
      if (!value(text)) return usageError(arg + " needs a path");
      (arg == "--agent" ? options.data_plane_options.agent : options.data_plane_options.ztunnel) =
          std::filesystem::absolute(text);
    } else if (arg == "--agent-arg" || arg == "--ztunnel-arg") {
      if (!value(text)) return usageError(arg + " needs a value");
      (arg == "--agent-arg" ? options.data_plane_options.agent_args
                            : options.data_plane_options.ztunnel_args)
          .push_back(text);
    } else if (!arg.empty() && arg[0] == '-') {
      return usageError("unknown option \"" + arg + "\"");
    } else if (options.verb.empty()) {
      options.verb = arg;
    } else if ((options.verb == "exec" || options.verb == "restart") && options.pod.empty() &&
               options.node.empty()) {
      options.pod = arg;
    } else if (options.verb == "restart" && options.process.empty()) {
      options.process = arg;
    } else {
      return usageError("unexpected argument \"" + arg + "\"");
    }
  }
  if (options.verb.empty())
    return usageError("no command given (up, down, status, exec or restart)");
  if (auto ok = lab::checkLabName(options.name); !ok) return usageError(ok.message());
  bool is_exec = options.verb == "exec";
  bool is_restart = options.verb == "restart";
  if (options.verb == "up" && options.data_plane && options.config.size() != 1)
    return usageError(
        "the data plane watches one configuration directory: give --config DIR once (or "
        "--no-data-plane)");
  if (options.verb == "up" && options.config.empty())
    return usageError("up needs --config PATH (the YAML with the pods)");
  if (options.verb != "up" && !options.config.empty())
    return usageError("--config only goes with up");
  if (!is_exec && !options.command.empty()) return usageError("-- COMMAND only goes with exec");
  if (!is_exec && !is_restart && !options.node.empty())
    return usageError("--node only goes with exec and restart");
  if (is_restart) {
    if (options.pod.empty() == options.node.empty())
      return usageError("restart needs a POD or --node NODE (one of them)");
    if (options.process.empty())
      return usageError("restart needs the PROCESS: agent, ztunnel, or a container's name");
  }
  if (options.json && options.verb != "status") return usageError("--json only goes with status");
  if (is_exec) {
    if (options.pod.empty() == options.node.empty())
      return usageError("exec needs a POD or --node NODE (one of them)");
    if (options.command.empty()) return usageError("exec needs -- COMMAND");
  }
  return options;
}

void printLab(const lab::LabState& state, Io io) {
  io.out << "lab " << state.name << " (run " << state.run_id << "), state "
         << state.state_path.string() << "\n";
  io.out << "bridge " << state.bridge << "  " << state.bridge_ipv4.to_string() << "/"
         << state.ipv4_prefix << " " << state.bridge_ipv6.to_string() << "/" << state.ipv6_prefix
         << "\n";
  for (const lab::NodeHandle& node : state.nodes)
    io.out << "node " << node.name << "  " << node.ipv4.to_string() << " " << node.ipv6.to_string()
           << "  netns " << node.netns << "\n";
  for (const lab::PodHandle& pod : state.pods)
    io.out << "pod " << pod.key() << " on " << pod.node << "  " << addresses(pod.ips) << "  netns "
           << pod.netns << "\n";
  for (const lab::ProcessHandle& process : state.processes)
    io.out << "process " << process.describe() << "  pid " << process.pid << "  log "
           << process.log.string() << "\n";
}

int up(const Options& options, Io io) {
  auto fail = [&](const std::string& message) {
    io.err << "sluicectl lab up: " << message << "\n";
    return kExitFailure;
  };
  auto spec = lab::LabSpec::fromPaths(options.config, options.name);
  if (!spec) return fail(spec.message());
  spec->state_dir = options.state_dir;
  lab::DataPlaneOptions plane = options.data_plane_options;
  if (options.data_plane) {
    plane.config_dir = std::filesystem::absolute(options.config.front());
    if (!std::filesystem::is_directory(plane.config_dir))
      return fail("the data plane watches one configuration directory: " +
                  plane.config_dir.string() + " is not one (or pass --no-data-plane)");
    if (auto found =
            lab::findDataPlaneBinaries(std::filesystem::read_symlink("/proc/self/exe"), plane);
        !found)
      return fail(found.message());
  }
  auto state = lab::up(*spec);
  if (!state) return fail(state.message());
  if (options.data_plane) {
    if (auto started = lab::startDataPlane(*state, *spec->snapshot, plane); !started) {
      auto removed = lab::down(*state);
      return fail("starting the data plane: " + started.message() +
                  (removed ? "\nthe lab is removed again"
                           : "\nremoving the lab failed too: " + removed.message()));
    }
  }
  printLab(*state, io);
  io.out << "\nrun as a pod: sluicectl lab exec"
         << (options.name == lab::kDefaultLabName ? "" : " --name " + options.name) << " "
         << state->pods.front().key() << " -- COMMAND\n";
  return kExitOk;
}

int down(const Options& options, Io io) {
  std::filesystem::path path = lab::statePath(options.state_dir, options.name);
  bool existed = std::filesystem::exists(path);
  auto removed = lab::downByName(options.state_dir, options.name);
  if (!removed) {
    io.err << "sluicectl lab down: " << removed.message() << "\n";
    return kExitFailure;
  }
  io.out << (existed ? "lab " + options.name + " removed\n"
                     : "no lab " + options.name + " (no " + path.string() + "): nothing to do\n");
  return kExitOk;
}

Result<lab::LabState> loadLab(const Options& options) {
  std::filesystem::path path = lab::statePath(options.state_dir, options.name);
  if (!std::filesystem::exists(path))
    return makeError("no lab " + options.name + " (no " + path.string() +
                     "): start one with `sluicectl lab up --config DIR`");
  return lab::LabState::load(path);
}

int status(const Options& options, Io io) {
  auto state = loadLab(options);
  if (!state) {
    io.err << "sluicectl lab status: " << state.message() << "\n";
    return kExitFailure;
  }
  if (options.json) {
    io.out << state->toJson();
    return kExitOk;
  }
  printLab(*state, io);
  io.out << "\n";
  std::vector<lab::ObjectStatus> objects = lab::inspect(*state);
  size_t missing = 0;
  std::string owner;
  for (const lab::ObjectStatus& object : objects) {
    if (object.owner != owner) {
      owner = object.owner;
      io.out << owner << "\n";
    }
    io.out << "  " << (object.exists ? "present" : "MISSING") << "  " << object.kind << " "
           << object.name << "\n";
    if (!object.exists) ++missing;
  }
  if (missing != 0) {
    io.out << missing << " of " << objects.size()
           << " objects missing: run `sluicectl lab down` and up again\n";
    return kExitFailure;
  }
  io.out << "all " << objects.size() << " objects present\n";
  return kExitOk;
}

int restart(const Options& options, Io io) {
  auto state = loadLab(options);
  if (!state) {
    io.err << "sluicectl lab restart: " << state.message() << "\n";
    return kExitFailure;
  }
  std::string owner = options.node;
  if (owner.empty()) {
    auto pod = state->findPod(options.pod);
    if (!pod) {
      io.err << "sluicectl lab restart: " << pod.message() << "\n";
      return kExitFailure;
    }
    owner = (*pod)->key();
  }
  auto restarted = lab::restartProcess(*state, owner, options.process);
  if (!restarted) {
    io.err << "sluicectl lab restart: " << restarted.message() << "\n";
    return kExitFailure;
  }
  io.out << "restarted " << restarted->describe() << ": pid " << restarted->pid << "\n";
  return kExitOk;
}

int exec(const Options& options, Io io) {
  auto state = loadLab(options);
  if (!state) {
    io.err << "sluicectl lab exec: " << state.message() << "\n";
    return kExitFailure;
  }
  io.out.flush();
  io.err.flush();
  std::cout.flush();
  std::cerr.flush();
  Error error = options.node.empty() ? lab::execInPod(*state, options.pod, options.command)
                                     : lab::execInNode(*state, options.node, options.command);
  io.err << "sluicectl lab exec: " << error.message << "\n";
  return kExitFailure;
}

}  // namespace

int labCommand(std::span<const std::string> args, Io io) {
  int exit_code = kExitOk;
  std::optional<Options> options = parse(args, io, exit_code);
  if (!options) return exit_code;
  if (options->verb == "up") return up(*options, io);
  if (options->verb == "down") return down(*options, io);
  if (options->verb == "status") return status(*options, io);
  if (options->verb == "exec") return exec(*options, io);
  if (options->verb == "restart") return restart(*options, io);
  io.err << "sluicectl lab: unknown command \"" << options->verb << "\"\n\n" << kUsage;
  return kExitUsage;
}

}  // namespace sluice::cli
