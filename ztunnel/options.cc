#include "ztunnel/options.h"

#include <charconv>
#include <thread>

#include "core/hbone/authority.h"

namespace sluice::ztunnel {

namespace ip = boost::asio::ip;

std::string usage() {
  return R"(usage: sluice-ztunnel --node NODE --config-dir DIR --ca-dir DIR [options]

Carries the TCP connections of the meshed pods on NODE over mutual-TLS HBONE tunnels.

  --node NODE                serve meshed pods whose spec.nodeName is NODE
  --config-dir DIR           directory of Kubernetes-shaped YAML (reloaded on change)
  --ca-dir DIR               embedded CA state; a root is generated on first start
  --trust-domain TD          SPIFFE trust domain (default cluster.local)
  --hbone-port PORT          HBONE listener port on each workload address (default 15008)
  --inbound-plaintext-port PORT  plaintext inbound port (default 15006)
  --inpod-socket PATH        in-pod mode: take workloads and their network namespaces from
                             the node agent listening on PATH
  --bpf-pin-dir DIR          in-pod mode: the capture maps pinned by the agent
                             (default /sys/fs/bpf/sluice)
  --outbound NS/POD=ADDR:PORT[,DEST:PORT]
                             outbound listener for workload NS/POD; traffic goes to DEST,
                             or to the address it was accepted on (repeatable)
  --admin ADDR:PORT          admin (config_dump), loopback only (default 127.0.0.1:15000)
  --metrics ADDR:PORT        Prometheus metrics (default 0.0.0.0:15020)
  --readiness ADDR:PORT      readiness probe (default 0.0.0.0:15021)
  --no-admin                 serve none of admin, metrics and readiness
  --workers N                worker threads (default: number of CPUs, at most 4)
  --access-log PATH|-|none   JSON access log per connection (default - = stdout)
  --socket-mark N            SO_MARK for ztunnel's own sockets (default 0: none; in-pod
                             mode 1337, the mark capture leaves alone)
  --pool-idle-timeout MS     close pooled connections idle this long (default 300000)
  --log-level LEVEL          trace, debug, info, warn, error (default info)
)";
}

Result<ip::tcp::endpoint> parseEndpoint(std::string_view text) {
  return hbone::parseListenAddress(text);
}

namespace {

Result<uint64_t> parseNumber(std::string_view flag, std::string_view text, uint64_t max) {
  uint64_t value = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || err != std::errc() || end != text.data() + text.size() || value > max)
    return makeError(std::string(flag) + ": expected a number up to " + std::to_string(max) +
                     ", got '" + std::string(text) + "'");
  return value;
}

Result<OutboundListenerSpec> parseOutbound(std::string_view text) {
  const auto fail = [&](const std::string& why) {
    return makeError("--outbound '" + std::string(text) + "': " + why +
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
    auto destination = hbone::parseAuthority(rest.substr(comma + 1));  // a real port, never 0
    if (!destination) return fail(destination.message());
    spec.destination = *destination;
  }
  return spec;
}

}  // namespace

Result<Options> parseOptions(int argc, char** argv, bool& help) {
  Options options;
  help = false;
  options.workers = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  options.admin = ip::tcp::endpoint(ip::make_address("127.0.0.1"), 15000);
  options.metrics = ip::tcp::endpoint(ip::address_v4::any(), 15020);
  options.readiness = ip::tcp::endpoint(ip::address_v4::any(), 15021);
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      help = true;
      return makeError(usage());
    }
    if (flag == "--no-admin") {
      options.admin.reset();
      options.metrics.reset();
      options.readiness.reset();
      continue;
    }
    if (i + 1 >= argc) return makeError(std::string(flag) + ": missing value\n\n" + usage());
    const std::string_view value = argv[++i];
    auto endpoint = [&](std::optional<ip::tcp::endpoint>& out) -> Result<void> {
      auto parsed = parseEndpoint(value);
      if (!parsed) return makeError(std::string(flag) + ": " + parsed.message());
      out = *parsed;
      return success();
    };
    Result<void> ok;
    if (flag == "--node") {
      options.node = value;
    } else if (flag == "--config-dir") {
      options.config_dir = value;
    } else if (flag == "--ca-dir") {
      options.ca_dir = value;
    } else if (flag == "--inpod-socket") {
      options.inpod_socket = value;
    } else if (flag == "--bpf-pin-dir") {
      options.bpf_pin_dir = value;
    } else if (flag == "--trust-domain") {
      options.trust_domain = value;
    } else if (flag == "--hbone-port" || flag == "--inbound-plaintext-port") {
      auto port = parseNumber(flag, value, 65535);
      if (!port) return port.error();
      (flag == "--hbone-port" ? options.hbone_port : options.inbound_plaintext_port) =
          static_cast<uint16_t>(*port);
    } else if (flag == "--outbound") {
      auto spec = parseOutbound(value);
      if (!spec) return spec.error();
      options.outbound.push_back(*spec);
    } else if (flag == "--admin") {
      ok = endpoint(options.admin);
      if (ok && !options.admin->address().is_loopback())
        return makeError("--admin must be a loopback address: config_dump exposes the mesh");
    } else if (flag == "--metrics") {
      ok = endpoint(options.metrics);
    } else if (flag == "--readiness") {
      ok = endpoint(options.readiness);
    } else if (flag == "--workers") {
      auto workers = parseNumber(flag, value, 64);
      if (!workers || *workers == 0) return makeError("--workers: expected 1..64");
      options.workers = static_cast<unsigned>(*workers);
    } else if (flag == "--access-log") {
      options.access_log = value == "none" ? "" : std::string(value);
    } else if (flag == "--socket-mark") {
      auto mark = parseNumber(flag, value, 0xffffffff);
      if (!mark) return mark.error();
      options.socket_mark = static_cast<uint32_t>(*mark);
    } else if (flag == "--pool-idle-timeout") {
      auto ms = parseNumber(flag, value, 86'400'000);
      if (!ms) return ms.error();
      options.pool_idle_timeout = std::chrono::milliseconds(*ms);
    } else if (flag == "--log-level") {
      options.log_level = value;
    } else {
      return makeError("unknown flag " + std::string(flag) + "\n\n" + usage());
    }
    if (!ok) return ok.error();
  }
  if (options.node.empty()) return makeError("--node is required\n\n" + usage());
  if (options.config_dir.empty()) return makeError("--config-dir is required\n\n" + usage());
  if (options.ca_dir.empty()) return makeError("--ca-dir is required\n\n" + usage());
  // In-pod, ztunnel's own sockets live in pods that capture applies to: they must carry the
  // mark the capture programs leave alone.
  if (!options.inpod_socket.empty() && options.socket_mark == 0) options.socket_mark = 1337;
  return options;
}

}  // namespace sluice::ztunnel
