// LabState: every kernel object one lab run owns, by name, as recorded in its state file.
//
// The state is computed in full before anything is created and saved first, so the file
// always names a superset of what exists: `down` can remove a lab after `up` crashed halfway.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::lab {

// A simulated node: a network namespace joined to the fabric bridge by a veth pair.
struct NodeHandle {
  std::string name;                  // spec.nodeName of its pods
  std::string netns;                 // `ip netns` name, sluice-<run>-<node>
  std::filesystem::path netns_path;  // /run/netns/<netns>
  std::filesystem::path cgroup;      // <cgroup2>/sluice-<run>/<node>: parent of its pods' cgroups
  std::string host_veth;             // the bridge port in the host netns
  std::string fabric_interface;      // its end of that pair inside the node netns
  boost::asio::ip::address ipv4;     // on the fabric, in 198.18.0.0/15
  boost::asio::ip::address ipv6;     // on the fabric, in fd00:5::/64
};

// A simulated pod: a network namespace attached to its node by a veth pair, and a cgroup.
struct PodHandle {
  std::string ns;
  std::string name;
  std::string node;
  std::string netns;                 // `ip netns` name, sluice-<run>-<ns>-<pod> (hashed if long)
  std::filesystem::path netns_path;  // /run/netns/<netns>
  std::filesystem::path cgroup;      // <cgroup2>/sluice-<run>/<node>/<ns>_<pod>
  std::string interface;             // inside the pod netns ("eth0")
  std::string node_veth;             // the peer inside the node netns
  std::vector<boost::asio::ip::address> ips;  // status.podIPs, in order

  std::string key() const { return ns + "/" + name; }
  // The first address of that family, or nullptr when the pod has none.
  const boost::asio::ip::address* ipv4() const;
  const boost::asio::ip::address* ipv6() const;
};

// A long-running process the lab started: a node's agent or ztunnel, or a pod's container.
// Its placement follows from its owner (the node's or the pod's netns and cgroup).
struct ProcessHandle {
  std::string owner;  // a node name ("node-a"), or a pod key ("shop/server")
  bool on_node = false;
  std::string role;  // "agent", "ztunnel", or the container's name
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "NAME=value" added to the lab's environment
  std::filesystem::path log;             // its stdout and stderr
  int pid = 0;
  std::string describe() const { return (on_node ? "node " : "pod ") + owner + " " + role; }
};

struct LabState {
  std::string name;    // the state file's name (lab-<name>.json)
  std::string run_id;  // the run-unique part of every object name
  std::filesystem::path state_path;
  std::filesystem::path cgroup_root;  // <cgroup2>/sluice-<run>
  std::string bridge;                 // sluice<run>-br
  boost::asio::ip::address bridge_ipv4;
  boost::asio::ip::address bridge_ipv6;
  int ipv4_prefix = 15;
  int ipv6_prefix = 64;
  std::vector<NodeHandle> nodes;  // by name
  std::vector<PodHandle> pods;    // by namespace, then name
  // The data plane, when `up` started one: its working directory (configuration, CA, sockets,
  // logs), the private BPF filesystem mounted there for the agents' pins, and its processes.
  std::filesystem::path run_dir;
  std::filesystem::path bpffs;
  std::vector<ProcessHandle> processes;

  const NodeHandle* node(std::string_view name) const;
  ProcessHandle* process(std::string_view owner, std::string_view role);
  // "ns/name", or a bare name when exactly one pod has it.
  Result<const PodHandle*> findPod(std::string_view pod) const;

  std::string toJson() const;
  static Result<LabState> fromJson(std::string_view json, const std::filesystem::path& origin);

  // Writes state_path atomically (a temporary file renamed over it), creating its directory.
  Result<void> save() const;
  static Result<LabState> load(const std::filesystem::path& path);
};

}  // namespace sluice::lab
