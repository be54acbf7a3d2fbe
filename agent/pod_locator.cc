#include "agent/pod_locator.h"

#include <algorithm>
#include <fstream>

#include "core/inpod/pod_netns_file.h"

namespace sluice::agent {

namespace {

class KubernetesLocator : public PodLocator {
 public:
  explicit KubernetesLocator(std::filesystem::path proc) : proc_(std::move(proc)) {}

  Result<inpod::Netns> locate(const config::Pod& pod) override {
    if (pod.meta.uid.empty())
      return makeError("pod " + pod.meta.ns + "/" + pod.meta.name + " has no metadata.uid");
    std::string dashed = "pod" + pod.meta.uid;
    std::string underscored = dashed;
    std::replace(underscored.begin(), underscored.end(), '-', '_');
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(proc_, ec)) {
      const auto name = entry.path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      std::ifstream cgroup(entry.path() / "cgroup");
      for (std::string line; std::getline(cgroup, line);) {
        if (line.find(dashed) == std::string::npos && line.find(underscored) == std::string::npos)
          continue;
        auto netns = inpod::Netns::open(entry.path() / "ns" / "net");
        if (netns) return netns;
      }
    }
    return makeError("no process of pod " + pod.meta.ns + "/" + pod.meta.name + " (uid " +
                     pod.meta.uid + ") found under " + proc_.string() + " yet");
  }

 private:
  std::filesystem::path proc_;
};

class PodNetnsFileLocator : public PodLocator {
 public:
  explicit PodNetnsFileLocator(std::filesystem::path file) : file_(std::move(file)) {}

  Result<inpod::Netns> locate(const config::Pod& pod) override {
    // Read each time: the file may be written after the agent starts.
    auto pods = inpod::readPodNetnsFile(file_);
    if (!pods) return pods.error();
    const std::string key = pod.meta.ns + "/" + pod.meta.name;
    auto it = pods->find(key);
    if (it == pods->end()) return makeError("pod " + key + " is not in " + file_.string());
    return inpod::Netns::open(it->second);
  }

 private:
  std::filesystem::path file_;
};

}  // namespace

std::unique_ptr<PodLocator> kubernetesLocator(std::filesystem::path proc) {
  return std::make_unique<KubernetesLocator>(std::move(proc));
}

std::unique_ptr<PodLocator> podNetnsFileLocator(std::filesystem::path file) {
  return std::make_unique<PodNetnsFileLocator>(std::move(file));
}

}  // namespace sluice::agent
