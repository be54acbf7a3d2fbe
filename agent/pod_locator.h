// PodLocator: finds the network namespace of a pod of this node.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/config/objects.h"
#include "core/inpod/netns.h"
#include "core/result.h"

namespace sluice::agent {

class PodLocator {
 public:
  virtual ~PodLocator() = default;
  // The pod's namespace, or an error saying why it cannot be found (yet).
  virtual Result<inpod::Netns> locate(const config::Pod& pod) = 0;
};

// Kubernetes: the namespace of a process whose cgroup path names the pod's UID (kubelet puts
// every container of a pod under a cgroup "pod<uid>", with '-' or '_' in the UID).
std::unique_ptr<PodLocator> kubernetesLocator(std::filesystem::path proc = "/proc");

// Namespaces listed in a pod netns file (core/inpod/pod_netns_file.h; the local lab writes one).
std::unique_ptr<PodLocator> podNetnsFileLocator(std::filesystem::path file);

}  // namespace sluice::agent
