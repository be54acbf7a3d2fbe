// Options of the waypoint daemon, from the command line.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "core/daemon/daemon_options.h"
#include "core/result.h"

namespace sluice::waypoint {

// The shared ones (configuration, CA, trust domain, admin listeners, access log, log level) come
// from DaemonOptions.
struct WaypointOptions : daemon::DaemonOptions {
  std::string name;             // the Gateway's name
  std::string ns;               // and namespace
  std::string service_account;  // default: the name (what Istio's waypoint deployments use)
  boost::asio::ip::tcp::endpoint hbone{boost::asio::ip::address_v4::any(), 15008};
  // Plain HTTP listeners that act as if every request came in a tunnel to `vip` (benchmarks
  // and tests of the proxy alone; no identity, so only policies without principals admit).
  struct PlainListener {
    boost::asio::ip::tcp::endpoint listen, vip;
  };
  std::vector<PlainListener> plain;
  std::chrono::milliseconds connect_timeout{10000};
};

// Parses argv with the flag table of options.cc; the error names the flag and what it expects.
// `--help` yields an error whose message is the usage text and sets `help`.
Result<WaypointOptions> parseWaypointOptions(int argc, char** argv, bool& help);

}  // namespace sluice::waypoint
