#include "core/daemon/daemon_options.h"

#include <spdlog/spdlog.h>

#include "core/net/authority.h"

namespace sluice::daemon {

namespace ip = boost::asio::ip;

Setter listenerAddress(std::optional<ip::tcp::endpoint>& out) {
  return [&out](std::string_view value) -> Result<void> {
    if (value == "off" || value == "none") {
      out.reset();
      return success();
    }
    auto parsed = net::parseListenAddress(value);
    if (!parsed) return parsed.error();
    out = *parsed;
    return success();
  };
}

Setter logLevel(spdlog::level::level_enum& out) {
  return [&out](std::string_view value) -> Result<void> {
    // spdlog reads any name it does not know as "off": a typo would silence the daemon.
    const auto level = spdlog::level::from_str(std::string(value));
    if (level == spdlog::level::off && value != "off")
      return makeError("'" + std::string(value) +
                       "' is not one of trace, debug, info, warn, error, critical, off");
    out = level;
    return success();
  };
}

void addSharedFlags(FlagSet& flags, DaemonOptions& options, SharedFlags which) {
  if (which.config_dir)
    flags.add("--config-dir", "DIR", "Kubernetes-shaped YAML, reloaded on change",
              assign(options.config_dir));
  if (which.ca_dir)
    flags.add("--ca-dir", "DIR", "embedded CA state; a root is generated on first start",
              assign(options.ca_dir));
  if (which.trust_domain)
    flags.add("--trust-domain", "TD", "SPIFFE trust domain", assign(options.trust_domain),
              options.trust_domain);
  if (which.listeners) {
    flags.add(
        "--admin", "ADDR:PORT|off", "/config_dump, metrics and /healthz/ready; loopback only",
        [&options, set = listenerAddress(options.admin)](std::string_view value) {
          if (auto r = set(value); !r) return r;
          if (options.admin && !options.admin->address().is_loopback())
            return Result<void>(
                makeError("must be a loopback address: config_dump exposes the mesh"));
          return success();
        },
        "127.0.0.1:15000");
    flags.add("--metrics", "ADDR:PORT|off", "Prometheus metrics, /metrics",
              listenerAddress(options.metrics), "0.0.0.0:15020");
    flags.add("--readiness", "ADDR:PORT|off", "readiness probe, /healthz/ready",
              listenerAddress(options.readiness), "0.0.0.0:15021");
    flags.add("--no-admin", "", "serve none of admin, metrics and readiness",
              [&options](std::string_view) {
                options.admin.reset();
                options.metrics.reset();
                options.readiness.reset();
                return success();
              });
  }
  if (which.access_log)
    flags.add(
        "--access-log", "PATH|-|off", "JSON access log; - is stdout",
        [&options](std::string_view value) {
          options.access_log = value == "off" || value == "none" ? "" : std::string(value);
          return success();
        },
        options.access_log);
  if (which.log_level) {
    const auto level = spdlog::level::to_string_view(options.log_level);
    flags.add("--log-level", "LEVEL", "trace, debug, info, warn, error, critical or off",
              logLevel(options.log_level), std::string(level.begin(), level.end()));
  }
  if (which.listeners || which.access_log)
    flags.note("A listener address or access log given as 'off' (or 'none') is turned off.");
}

}  // namespace sluice::daemon
