// sluice-agent: the node agent (DaemonSet). `run` enrolls pods; `uninstall` removes all capture.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <string_view>

#include "agent/agent.h"
#include "core/stop_signals.h"

namespace {

const char* kUsage = R"(usage: sluice-agent run --node NODE --config-dir DIR [options]
       sluice-agent uninstall [--cgroup PATH] [--pin-dir DIR]

Enrolls the pods of NODE whose namespace is labelled sluice.dev/dataplane-mode=ambient
(a pod opts out with sluice.dev/dataplane-mode=none): hands each to ztunnel with its
network namespace, then captures its traffic with eBPF. No pod restarts.

  --node NODE          this node's name (spec.nodeName of its pods)
  --config-dir DIR     Kubernetes-shaped YAML (reloaded on change)
  --cgroup PATH        cgroup v2 directory to attach capture at (default: the cgroup v2 root)
  --pin-dir DIR        BPF pins (default /sys/fs/bpf/sluice); kept across restarts
  --socket PATH        where ztunnel connects (default /var/run/sluice/ztunnel.sock)
  --pod-netns FILE     find pods' network namespaces in a pod netns file (sluicectl lab writes one)
  --local-acceleration on|off
                       redirect loopback hops between pods and ztunnel with sockops + sk_msg,
                       skipping the TCP stack (default off; off removes it)
  --log-level LEVEL    trace, debug, info, warn, error (default info)
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string_view command = argv[1];
  sluice::agent::AgentOptions options;
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: missing value\n\n%s", argv[i], kUsage);
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--node")
      options.node = value;
    else if (flag == "--config-dir")
      options.config_dir = value;
    else if (flag == "--cgroup")
      options.cgroup = value;
    else if (flag == "--pin-dir")
      options.pin_dir = value;
    else if (flag == "--socket")
      options.socket = value;
    else if (flag == "--pod-netns")
      options.pod_netns_file = value;
    else if (flag == "--local-acceleration") {
      if (std::string_view(value) != "on" && std::string_view(value) != "off") {
        std::fprintf(stderr, "--local-acceleration: expected on or off\n");
        return 2;
      }
      options.local_acceleration = std::string_view(value) == "on";
    } else if (flag == "--log-level")
      spdlog::set_level(spdlog::level::from_str(value));
    else {
      std::fprintf(stderr, "unknown flag %s\n\n%s", argv[i - 1], kUsage);
      return 2;
    }
  }
  if (command == "uninstall") {
    auto removed = sluice::agent::uninstall(options);
    if (!removed) {
      spdlog::error("uninstall: {}", removed.message());
      return 1;
    }
    spdlog::info("capture programs detached, pins removed from {}", options.pin_dir.string());
    return 0;
  }
  if (command != "run") {
    std::fprintf(stderr, "unknown command %s\n\n%s", argv[1], kUsage);
    return 2;
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
