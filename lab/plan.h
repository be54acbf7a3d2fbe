// Planning a lab: from the pods of a configuration snapshot to the names and addresses of
// every object the lab will create. Pure (no kernel calls), so it is tested without root.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/snapshot.h"
#include "lab/lab_state.h"
#include "core/result.h"

namespace sluice::lab {

inline constexpr std::string_view kDefaultStateDir = "/run/sluice";
inline constexpr std::string_view kDefaultLabName = "default";
inline constexpr std::string_view kNetnsDir = "/run/netns";

// The fabric: the host end of the bridge holds the first address, node i (0-based, nodes in
// name order) holds the (i + 2)nd. Pods take theirs from the YAML and must stay inside.
inline constexpr std::string_view kFabricIPv4 = "198.18.0.0";
inline constexpr int kFabricIPv4Prefix = 15;
inline constexpr std::string_view kFabricIPv6 = "fd00:5::";
inline constexpr int kFabricIPv6Prefix = 64;
// Each pod netns reaches its node through this link-local address on the node's end of the
// pod's veth (IPv6 neighbour discovery only answers for addresses on the asking link).
inline constexpr std::string_view kPodGatewayIPv6 = "fe80::1";

inline constexpr size_t kMaxNodes = 99;  // fits sluice<run>n<NN> into 15 characters
inline constexpr size_t kMaxPods = 999;  // fits sluice<run>p<NNN>
inline constexpr size_t kRunIdLength = 5;

struct LabSpec {
  std::string name{kDefaultLabName};  // the state file is <state_dir>/lab-<name>.json
  std::filesystem::path state_dir{kDefaultStateDir};
  // The pods (with spec.nodeName and status.podIPs) that make up the lab.
  std::shared_ptr<const config::Snapshot> snapshot;
  // Empty picks a fresh random one; [0-9a-z]{5} otherwise.
  std::string run_id;

  // Loads YAML files and directories exactly as the ztunnel's file source does; any rejected
  // document fails the load with its file, line and field.
  static Result<LabSpec> fromPaths(const std::vector<std::filesystem::path>& paths,
                                   std::string name = std::string(kDefaultLabName));
};

// <state_dir>/lab-<name>.json, made absolute (a relative state_dir is taken from the working
// directory once, so every command on the lab names the same files).
std::filesystem::path statePath(const std::filesystem::path& state_dir, std::string_view name);

// Checks a lab name: [a-z0-9][a-z0-9_.-]*, at most 63 characters (it becomes a file name).
Result<void> checkLabName(std::string_view name);

// A fresh random run id ([0-9a-z]{5}).
std::string randomRunId();

// Computes the LabState for `spec` (whose run_id must be set) with pod cgroups under
// `cgroup2_mount`. Host-network pods and pods that have finished (Succeeded, Failed) are left
// out. Refuses, naming the pod: a pod without spec.nodeName or without IPs, an address outside
// 198.18.0.0/15 and fd00:5::/64, an address the fabric uses or another pod has.
Result<LabState> planLab(const LabSpec& spec, const std::filesystem::path& cgroup2_mount);

// An `ip netns` / cgroup name part: `text` when it fits `max` characters, otherwise a prefix
// of it and an 8-digit hash of the whole, so distinct inputs stay distinct.
std::string fitName(std::string_view text, size_t max);

}  // namespace sluice::lab
