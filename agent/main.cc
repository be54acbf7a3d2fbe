// sluice-agent: the node agent (DaemonSet). `run` enrolls pods; `uninstall` removes all capture.
#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "agent/agent.h"
#include "core/daemon/daemon_options.h"
#include "core/daemon/flags.h"
#include "core/stop_signals.h"

namespace {

namespace daemon = sluice::daemon;

// The flag table, bound to `options` and `shared` (of which the agent takes the configuration
// directory and the log level).
daemon::FlagSet flagTable(sluice::agent::AgentOptions& options, daemon::DaemonOptions& shared) {
  daemon::FlagSet flags(
      "sluice-agent run --node NODE --config-dir DIR [options]\n"
      "       sluice-agent uninstall [--cgroup PATH] [--pin-dir DIR]",
      "Enrolls the pods of NODE whose namespace is labelled sluice.dev/dataplane-mode=ambient\n"
      "(a pod opts out with sluice.dev/dataplane-mode=none): hands each to ztunnel with its\n"
      "network namespace, then captures its traffic with eBPF. No pod restarts.");
  flags.add("--node", "NODE", "this node's name (spec.nodeName of its pods)",
            daemon::assign(options.node));
  daemon::addSharedFlags(
      flags, shared,
      {.ca_dir = false, .trust_domain = false, .listeners = false, .access_log = false});
  flags.add("--cgroup", "PATH",
            "cgroup v2 directory to attach capture at (default: the cgroup v2 root)",
            daemon::assign(options.cgroup));
  flags.add("--pin-dir", "DIR", "BPF pins, kept across restarts", daemon::assign(options.pin_dir),
            options.pin_dir.string());
  flags.add("--socket", "PATH", "where ztunnel connects", daemon::assign(options.socket),
            options.socket.string());
  flags.add("--pod-netns", "FILE",
            "find pods' network namespaces in a pod netns file (sluicectl lab writes one)",
            daemon::assign(options.pod_netns_file));
  flags.add("--local-acceleration", "on|off",
            "redirect loopback hops between pods and ztunnel with sockops + sk_msg,\n"
            "skipping the TCP stack; off removes it",
            daemon::onOff(options.local_acceleration), options.local_acceleration ? "on" : "off");
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  sluice::agent::AgentOptions options;
  daemon::DaemonOptions shared;
  const auto flags = flagTable(options, shared);
  const std::string_view command = argc < 2 ? "" : argv[1];
  if (command == "--help" || command == "-h")
    return daemon::exitAfterFlags(flags.program(), flags.usage(), true);
  if (command != "run" && command != "uninstall")
    return daemon::exitAfterFlags(
        flags.program(),
        command.empty() ? "missing command (run or uninstall)"
                        : std::string(command) + ": unknown command (run or uninstall)",
        false);
  bool help = false;
  if (auto parsed = flags.parse(argc, argv, help, 2); !parsed)
    return daemon::exitAfterFlags(flags.program(), parsed.message(), help);
  options.config_dir = shared.config_dir;
  spdlog::set_level(shared.log_level);
  if (command == "uninstall") {
    auto removed = sluice::agent::uninstall(options);
    if (!removed) {
      spdlog::error("uninstall: {}", removed.message());
      return 1;
    }
    spdlog::info("capture programs detached, pins removed from {}", options.pin_dir.string());
    return 0;
  }
  sluice::StopSignals stop_signals;
  auto agent = sluice::agent::Agent::create(options);
  if (!agent) {
    spdlog::error("sluice-agent cannot start: {}", agent.message());
    return 1;
  }
  (*agent)->start();
  spdlog::info("sluice-agent running for node {}; ztunnel socket {}", options.node,
               options.socket.string());
  const int received = stop_signals.wait();
  spdlog::info("signal {}: stopping (capture stays pinned)", received);
  (*agent)->stop();
  return 0;
}
