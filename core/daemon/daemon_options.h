// The options the Sluice daemons share (configuration, CA, trust domain, admin listeners, access
// log, log level) and their flags, so that each is spelled, parsed and described once.
#pragma once

#include <spdlog/common.h>

#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "core/daemon/flags.h"

namespace sluice::daemon {

struct DaemonOptions {
  std::filesystem::path config_dir;  // Kubernetes-shaped YAML (file source)
  std::filesystem::path ca_dir;      // embedded CA state (root generated on first start)
  std::string trust_domain = "cluster.local";
  // The admin (config_dump; loopback only), metrics and readiness listeners: none unless set.
  // The flags default them to Istio's 127.0.0.1:15000, 0.0.0.0:15020 and 0.0.0.0:15021.
  std::optional<boost::asio::ip::tcp::endpoint> admin, metrics, readiness;
  std::string access_log = "-";  // a file, "-" for stdout, "" for none
  spdlog::level::level_enum log_level = spdlog::level::info;
};

// Which of the shared flags a daemon takes.
struct SharedFlags {
  bool config_dir = true;
  bool ca_dir = true;
  bool trust_domain = true;
  bool listeners = true;  // --admin, --metrics, --readiness, --no-admin
  bool access_log = true;
  bool log_level = true;
};

// Adds the chosen shared flags, bound to `options`, and the note on what 'off' means.
void addSharedFlags(FlagSet& flags, DaemonOptions& options, SharedFlags which = {});

// A listener address, ADDR:PORT (port 0: any free port), or "off" (also "none") for none.
Setter listenerAddress(std::optional<boost::asio::ip::tcp::endpoint>& out);
// trace, debug, info, warn, error, critical or off (and spdlog's aliases warning, err).
Setter logLevel(spdlog::level::level_enum& out);

}  // namespace sluice::daemon
