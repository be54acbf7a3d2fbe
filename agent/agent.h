// Agent: the node agent. Loads and pins the capture programs, decides which pods of its node
// are enrolled (namespace labelled sluice.dev/dataplane-mode=ambient, pod not opted out, not
// host-network), hands each to ztunnel with its network namespace, and only then turns capture
// on for it; on unenrollment, capture goes off first, then ztunnel lets the pod go. Connections
// already open are never touched: capture acts at connect time.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace sluice::agent {

struct AgentOptions {
  std::string node;
  std::filesystem::path config_dir;
  std::filesystem::path cgroup;                    // attach point; empty: the cgroup v2 root
  std::filesystem::path pin_dir = "/sys/fs/bpf/sluice";
  std::filesystem::path socket = "/var/run/sluice/ztunnel.sock";
  std::filesystem::path pod_netns_file;  // set: find pods' netns there (core/inpod/pod_netns_file.h)
  uint32_t ztunnel_mark = 1337;
  // Local-hop acceleration (sockops + sk_msg): off by default; turning it off removes it.
  bool local_acceleration = false;
  std::chrono::milliseconds retry = std::chrono::seconds(1);  // pods whose netns is not found yet
};

struct EnrolledPod {
  std::string key;  // ns/name
  uint64_t netns_cookie = 0;
  bool ztunnel_acknowledged = false;
};

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> create(AgentOptions options);
  ~Agent();
  void start();
  void stop();  // returns when the agent's thread has ended; capture stays pinned
  std::vector<EnrolledPod> enrolled() const;
  bool ztunnelConnected() const;

  struct Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes everything the agent installed: programs detached, maps and links unpinned.
Result<void> uninstall(const AgentOptions& options);

}  // namespace sluice::agent
