// Shared pieces of the lab tests: a temporary directory, the small two-node mesh, and the
// root check (skip on a developer machine, fail in CI where the lab must run).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/config/loader.h"
#include "lab/lab.h"

namespace sluice::lab::testing {

// A directory unique to this run, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-lab-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Two nodes, three pods, dual stack: shop/client and shop/local-server on node-a,
// shop/remote-server on node-b.
inline constexpr std::string_view kTwoNodeMesh = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {nodeName: node-a}
status: {phase: Running, podIPs: [{ip: 198.18.1.10}, {ip: "fd00:5::1:10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: local-server, namespace: shop}
spec: {nodeName: node-a}
status: {phase: Running, podIPs: [{ip: 198.18.1.11}, {ip: "fd00:5::1:11"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: remote-server, namespace: shop}
spec: {nodeName: node-b}
status: {phase: Running, podIPs: [{ip: 198.18.2.10}, {ip: "fd00:5::2:10"}]}
)";

// A spec for `yaml` whose state file lives in `state_dir`.
inline LabSpec specFor(std::string_view yaml, const std::filesystem::path& state_dir,
                       std::string name = "test") {
  config::LoadResult loaded = config::loadString(yaml, "lab.yaml");
  if (loaded.snapshot == nullptr) throw std::runtime_error("test YAML rejected");
  LabSpec spec;
  spec.name = std::move(name);
  spec.state_dir = state_dir;
  spec.snapshot = loaded.snapshot;
  return spec;
}

inline bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// Why this machine cannot run a lab, or nullopt when it can.
inline std::optional<std::string> missingForLab() {
  if (::geteuid() != 0) return "the lab needs root (netns, veths, cgroups)";
  if (!findExecutable("ip")) return "the lab needs iproute2's `ip`";
  if (auto mount = findCgroup2Mount(); !mount) return mount.message();
  return std::nullopt;
}

}  // namespace sluice::lab::testing

// Skips the test where the lab cannot run, but fails it in CI (CI=true), which runs as root.
#define SLUICE_REQUIRE_LAB_HOST()                                                   \
  do {                                                                              \
    if (auto why = ::sluice::lab::testing::missingForLab()) {                       \
      if (::sluice::lab::testing::inCi()) FAIL() << *why << " (CI=true: required)"; \
      GTEST_SKIP() << *why;                                                         \
    }                                                                               \
  } while (0)
