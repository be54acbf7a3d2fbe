#include "agent/pod_locator.h"

#include <algorithm>
#include <fstream>

#include "core/lab/lab_state.h"

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

class LabLocator : public PodLocator {
 public:
  explicit LabLocator(std::filesystem::path state_file) : state_file_(std::move(state_file)) {}

  Result<inpod::Netns> locate(const config::Pod& pod) override {
    // Read each time: the lab may be brought up after the agent starts.
    auto state = lab::LabState::load(state_file_);
    if (!state) return makeError("lab state " + state_file_.string() + ": " + state.message());
    auto handle = state->findPod(pod.meta.ns + "/" + pod.meta.name);
    if (!handle) return handle.error();
    return inpod::Netns::open((*handle)->netns_path);
  }

 private:
  std::filesystem::path state_file_;
};

}  // namespace

std::unique_ptr<PodLocator> kubernetesLocator(std::filesystem::path proc) {
  return std::make_unique<KubernetesLocator>(std::move(proc));
}

std::unique_ptr<PodLocator> labLocator(std::filesystem::path state_file) {
  return std::make_unique<LabLocator>(std::move(state_file));
}

}  // namespace sluice::agent
