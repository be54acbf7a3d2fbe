// Options of the tunnel daemon, from the command line.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/daemon/daemon_options.h"
#include "core/result.h"

namespace sluice::ztunnel {

// An outbound entry for a workload of this node, until eBPF capture supplies the original
// destination: connections accepted on `listen` leave as the workload `ns/pod`, to
// `destination` when given, else to the address they were accepted on.
struct OutboundListenerSpec {
  std::string ns;
  std::string pod;
  boost::asio::ip::tcp::endpoint listen;
  std::optional<boost::asio::ip::tcp::endpoint> destination;
};

// The shared ones (configuration, CA, trust domain, admin listeners, access log, log level) come
// from DaemonOptions.
struct Options : daemon::DaemonOptions {
  std::string node;  // serve the meshed pods scheduled on this node
  uint16_t hbone_port = 15008;
  uint16_t inbound_plaintext_port = 15006;
  uint16_t outbound_capture_port = 15001;  // in-pod: loopback listener capture redirects to
  // In-pod mode: the node agent's socket; workloads then come from the agent, each with its
  // network namespace, instead of from the configuration's pods on this node.
  std::filesystem::path inpod_socket;
  // In-pod mode: where the capture programs pinned their maps; the original destination of
  // each captured connection is taken from there.
  std::filesystem::path bpf_pin_dir = "/sys/fs/bpf/sluice";
  // In-pod mode: steer traffic arriving at each pod to its 15006 listener (sk_lookup).
  bool inbound_steering = true;
  // Overrides the pinned map (tests): the original destination of an accepted connection, or
  // nothing to refuse it.
  std::function<std::optional<boost::asio::ip::tcp::endpoint>(int accepted_fd)>
      original_destination;
  std::vector<OutboundListenerSpec> outbound;
  unsigned workers = 1;
  uint32_t socket_mark = 0;  // SO_MARK on every socket ztunnel opens (in-pod: 1337)
  std::chrono::milliseconds pool_idle_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
};

// Parses argv with the flag table of options.cc; the error names the flag and what it expects.
// `--help` yields an error whose message is the usage text and sets `help`.
Result<Options> parseOptions(int argc, char** argv, bool& help);

Result<boost::asio::ip::tcp::endpoint> parseEndpoint(std::string_view text);

}  // namespace sluice::ztunnel
