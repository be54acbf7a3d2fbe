#include "ztunnel/options.h"

#include <thread>

#include "core/daemon/flags.h"
#include "core/net/authority.h"

namespace sluice::ztunnel {

namespace ip = boost::asio::ip;

Result<ip::tcp::endpoint> parseEndpoint(std::string_view text) {
  return net::parseListenAddress(text);
}

namespace {

Result<OutboundListenerSpec> parseOutbound(std::string_view text) {
  const auto fail = [&](const std::string& why) {
    return makeError("'" + std::string(text) + "': " + why +
                     " (expected NS/POD=ADDR:PORT[,DEST:PORT])");
  };
  const auto eq = text.find('=');
  const auto slash = text.find('/');
  if (eq == std::string_view::npos || slash == std::string_view::npos || slash > eq)
    return fail("missing NS/POD=");
  OutboundListenerSpec spec;
  spec.ns = std::string(text.substr(0, slash));
  spec.pod = std::string(text.substr(slash + 1, eq - slash - 1));
  if (spec.ns.empty() || spec.pod.empty()) return fail("empty namespace or pod name");
  auto rest = text.substr(eq + 1);
  const auto comma = rest.find(',');
  auto listen = parseEndpoint(rest.substr(0, comma));
  if (!listen) return fail(listen.message());
  spec.listen = *listen;
  if (comma != std::string_view::npos) {
    auto destination = net::parseAuthority(rest.substr(comma + 1));  // a real port, never 0
    if (!destination) return fail(destination.message());
    spec.destination = *destination;
  }
  return spec;
}

// The flag table, bound to `options`.
daemon::FlagSet flagTable(Options& options) {
  daemon::FlagSet flags(
      "sluice-ztunnel --node NODE --config-dir DIR --ca-dir DIR [options]",
      "Carries the TCP connections of the meshed pods on NODE over mutual-TLS HBONE tunnels.");
  flags.add("--node", "NODE", "serve meshed pods whose spec.nodeName is NODE",
            daemon::assign(options.node));
  daemon::addSharedFlags(flags, options);
  flags.require("--node").require("--config-dir").require("--ca-dir");
  flags.add("--hbone-port", "PORT", "HBONE listener port on each workload address",
            daemon::number<uint16_t>(options.hbone_port, 0, 65535),
            std::to_string(options.hbone_port));
  flags.add("--inbound-plaintext-port", "PORT", "plaintext inbound port",
            daemon::number<uint16_t>(options.inbound_plaintext_port, 0, 65535),
            std::to_string(options.inbound_plaintext_port));
  flags.add("--inpod-socket", "PATH",
            "in-pod mode: take workloads and their network namespaces from\n"
            "the node agent listening on PATH",
            daemon::assign(options.inpod_socket));
  flags.add("--bpf-pin-dir", "DIR", "in-pod mode: the capture maps pinned by the agent",
            daemon::assign(options.bpf_pin_dir), options.bpf_pin_dir.string());
  flags.add("--outbound", "NS/POD=ADDR:PORT[,DEST:PORT]",
            "outbound listener for workload NS/POD; traffic goes to DEST,\n"
            "or to the address it was accepted on (repeatable)",
            daemon::append(options.outbound, parseOutbound));
  flags.add("--workers", "N", "worker threads (default: number of CPUs, at most 4)",
            daemon::number(options.workers, 1u, 64u));
  flags.add("--socket-mark", "N",
            "SO_MARK for ztunnel's own sockets (default 0: none; in-pod\n"
            "mode 1337, the mark capture leaves alone)",
            daemon::number(options.socket_mark, 0u, 0xffffffffu));
  flags.add("--pool-idle-timeout", "MS", "close pooled connections idle this long",
            daemon::milliseconds(options.pool_idle_timeout, std::chrono::milliseconds(0),
                                 std::chrono::milliseconds(86'400'000)),
            std::to_string(options.pool_idle_timeout.count()));
  return flags;
}

}  // namespace

Result<Options> parseOptions(int argc, char** argv, bool& help) {
  Options options;
  options.workers = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  if (auto parsed = flagTable(options).parse(argc, argv, help); !parsed) return parsed.error();
  // In-pod, ztunnel's own sockets live in pods that capture applies to: they must carry the
  // mark the capture programs leave alone.
  if (!options.inpod_socket.empty() && options.socket_mark == 0) options.socket_mark = 1337;
  return options;
}

}  // namespace sluice::ztunnel
