#include "lab/plan.h"

#include <array>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "core/config/loader.h"

namespace sluice::lab {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::address_v4;
using boost::asio::ip::address_v6;

// Netns names stay at 64 characters at most: short enough to read in `ip netns list`.
constexpr size_t kMaxNetnsName = 64;
// cgroup directory names: NAME_MAX is 255; keep room for nothing else.
constexpr size_t kMaxCgroupName = 200;

uint32_t fnv1a(std::string_view text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

// `display` cut to leave room for "-" and 8 hex digits of the hash of `key`.
std::string withHash(std::string_view display, std::string_view key, size_t max) {
  char hash[9];
  std::snprintf(hash, sizeof hash, "%08x", fnv1a(key));
  size_t keep = max > 9 ? max - 9 : 0;
  std::string out(display.substr(0, keep));
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  return out + "-" + hash;
}

address_v4 fabricV4(uint32_t host) {
  return address_v4(boost::asio::ip::make_address_v4(kFabricIPv4).to_uint() + host);
}

address_v6 fabricV6(uint8_t host) {
  address_v6::bytes_type bytes = boost::asio::ip::make_address_v6(kFabricIPv6).to_bytes();
  bytes[15] = host;
  return address_v6(bytes);
}

bool inFabric(const address& ip) {
  if (ip.is_v4()) {
    uint32_t mask = ~uint32_t{0} << (32 - kFabricIPv4Prefix);
    uint32_t net = boost::asio::ip::make_address_v4(kFabricIPv4).to_uint();
    return (ip.to_v4().to_uint() & mask) == net;
  }
  auto bytes = ip.to_v6().to_bytes();
  auto net = boost::asio::ip::make_address_v6(kFabricIPv6).to_bytes();
  static_assert(kFabricIPv6Prefix == 64);
  return std::equal(bytes.begin(), bytes.begin() + 8, net.begin());
}

bool validRunId(std::string_view id) {
  if (id.size() != kRunIdLength) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

// True for pods the lab gives a network namespace: Kubernetes runs no network for host-network
// pods (they share the node's) or for pods that have finished.
bool wantsNetns(const config::Pod& pod) {
  return !pod.host_network && pod.phase != "Succeeded" && pod.phase != "Failed";
}

}  // namespace

Result<LabSpec> LabSpec::fromPaths(const std::vector<std::filesystem::path>& paths,
                                   std::string name) {
  if (paths.empty()) return makeError("no configuration given (--config DIR)");
  config::LoadResult loaded = config::loadPaths(paths);
  if (loaded.snapshot == nullptr) {
    std::string message = "the configuration is rejected:";
    for (const config::DocumentReport& report : loaded.documents)
      if (report.status == config::DocumentReport::Status::kRejected)
        message += "\n  " + config::formatReport(report);
    return makeError(message);
  }
  LabSpec spec;
  spec.name = std::move(name);
  spec.snapshot = loaded.snapshot;
  return spec;
}

std::filesystem::path statePath(const std::filesystem::path& state_dir, std::string_view name) {
  // Absolute, so `up` and `down` from different working directories, or one relative DIR, name
  // the same files (the run directory is checked against this path before it is removed).
  return std::filesystem::absolute(state_dir) / ("lab-" + std::string(name) + ".json");
}

Result<void> checkLabName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    ok = alnum || (i > 0 && (c == '-' || c == '_' || c == '.'));
  }
  if (!ok)
    return makeError("lab name \"" + std::string(name) +
                     "\" is not valid: use lower-case letters, digits, '-', '_' and '.', "
                     "starting with a letter or digit, at most 63 characters");
  return success();
}

std::string randomRunId() {
  static constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device random;  // getrandom(2) on Linux: distinct across concurrent runs
  std::string id;
  for (size_t i = 0; i < kRunIdLength; ++i) id += kAlphabet[random() % kAlphabet.size()];
  return id;
}

std::string fitName(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  return withHash(text, text, max);
}

Result<LabState> planLab(const LabSpec& spec, const std::filesystem::path& cgroup2_mount) {
  if (auto ok = checkLabName(spec.name); !ok) return ok.error();
  if (!validRunId(spec.run_id))
    return makeError("run id \"" + spec.run_id + "\" is not [0-9a-z]{5}");
  if (spec.snapshot == nullptr) return makeError("the lab has no configuration");

  LabState state;
  state.name = spec.name;
  state.run_id = spec.run_id;
  state.state_path = statePath(spec.state_dir, spec.name);
  state.cgroup_root = cgroup2_mount / ("sluice-" + spec.run_id);
  state.bridge = "sluice" + spec.run_id + "-br";
  state.bridge_ipv4 = fabricV4(1);
  state.bridge_ipv6 = fabricV6(1);
  state.ipv4_prefix = kFabricIPv4Prefix;
  state.ipv6_prefix = kFabricIPv6Prefix;

  // Nodes are the nodeNames of the pods that get a netns.
  std::vector<const config::Pod*> pods;
  std::set<std::string> node_names;
  for (const config::Pod& pod : spec.snapshot->pods()) {
    if (!wantsNetns(pod)) continue;
    std::string key = pod.meta.ns + "/" + pod.meta.name;
    if (pod.node_name.empty())
      return makeError("pod " + key +
                       " has no spec.nodeName: the lab needs it to know which node runs the pod");
    if (pod.ips.empty())
      return makeError("pod " + key + " has no status.podIP/podIPs: the lab needs its address");
    pods.push_back(&pod);
    node_names.insert(pod.node_name);
  }
  if (pods.empty())
    return makeError(
        "the configuration has no pods to run (host-network and finished pods "
        "are left out)");
  if (node_names.size() > kMaxNodes)
    return makeError("the lab supports at most " + std::to_string(kMaxNodes) + " nodes, not " +
                     std::to_string(node_names.size()));
  if (pods.size() > kMaxPods)
    return makeError("the lab supports at most " + std::to_string(kMaxPods) + " pods, not " +
                     std::to_string(pods.size()));

  const std::string prefix = "sluice-" + spec.run_id + "-";
  std::set<std::string> netns_names;
  // Which object already holds an address, for a message naming both.
  std::map<address, std::string> owners;
  owners[fabricV4(0)] = "the fabric network address";
  owners[address_v4(fabricV4(0).to_uint() | ((1u << (32 - kFabricIPv4Prefix)) - 1))] =
      "the fabric broadcast address";
  owners[fabricV6(0)] = "the fabric subnet-router address";
  owners[state.bridge_ipv4] = "the host's bridge address";
  owners[state.bridge_ipv6] = "the host's bridge address";

  size_t index = 0;
  for (const std::string& name : node_names) {
    NodeHandle node;
    node.name = name;
    node.netns = prefix + fitName(name, kMaxNetnsName - prefix.size());
    node.netns_path = std::filesystem::path(kNetnsDir) / node.netns;
    node.cgroup = state.cgroup_root / fitName(name, kMaxCgroupName);
    node.host_veth = "sluice" + spec.run_id + "n" + std::to_string(index + 1);
    node.fabric_interface = "eth0";
    node.ipv4 = fabricV4(static_cast<uint32_t>(index + 2));
    node.ipv6 = fabricV6(static_cast<uint8_t>(index + 2));
    owners[node.ipv4] = "node " + name + "'s fabric address";
    owners[node.ipv6] = "node " + name + "'s fabric address";
    netns_names.insert(node.netns);
    state.nodes.push_back(std::move(node));
    ++index;
  }

  index = 0;
  for (const config::Pod* pod : pods) {
    PodHandle handle;
    handle.ns = pod->meta.ns;
    handle.name = pod->meta.name;
    handle.node = pod->node_name;
    std::string key = handle.key();
    for (const address& ip : pod->ips) {
      if (!inFabric(ip))
        return makeError("pod " + key + " has address " + ip.to_string() +
                         ", outside the lab's networks 198.18.0.0/15 and fd00:5::/64: give lab "
                         "pods addresses there (e.g. 198.18.1.10, fd00:5::10)");
      auto [owner, fresh] = owners.emplace(ip, "pod " + key);
      if (!fresh)
        return makeError("pod " + key + " has address " + ip.to_string() + ", which is " +
                         owner->second + " (nodes take 198.18.0.2 and fd00:5::2 onwards)");
    }
    handle.ips = pod->ips;
    std::string display = handle.ns + "-" + handle.name;
    size_t room = kMaxNetnsName - prefix.size();
    handle.netns = prefix + fitName(display, room);
    // "a-b"/"c" and "a"/"b-c", or a pod named like a node, would share a name: hash the key.
    if (netns_names.count(handle.netns) != 0) handle.netns = prefix + withHash(display, key, room);
    netns_names.insert(handle.netns);
    handle.netns_path = std::filesystem::path(kNetnsDir) / handle.netns;
    const NodeHandle* node = state.node(handle.node);
    // '_' cannot appear in Kubernetes names, so <ns>_<pod> is unique within a node.
    handle.cgroup = node->cgroup / fitName(handle.ns + "_" + handle.name, kMaxCgroupName);
    handle.interface = "eth0";
    handle.node_veth = "sluice" + spec.run_id + "p" + std::to_string(index + 1);
    state.pods.push_back(std::move(handle));
    ++index;
  }
  return state;
}

}  // namespace sluice::lab
