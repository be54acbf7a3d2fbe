// Outbound capture: cgroup/connect4, cgroup/connect6 and sockops, their maps, links and pins.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/include/sluice_shared.h"
#include "core/bpf/bpf_util.h"
#include "core/bpf/original_destination.h"
#include "core/bpf/socket_address.h"
#include "core/result.h"

struct sluice_capture;  // generated skeleton (bpf/capture.skel.h)

namespace sluice::bpf {

struct CaptureOptions {
  // cgroup v2 directory the programs attach to: every socket created by a process in it or below
  // is subject to capture. The node's cgroup root in production; tests give their own.
  std::string cgroupPath;
  // Where maps and links are pinned (a BPF filesystem). Pinned, they outlive this process: capture
  // continues while the agent restarts, and the next create() reuses them. Empty: nothing is
  // pinned, and capture ends when the CaptureProgram is destroyed.
  std::string pinDirectory = "/sys/fs/bpf/sluice";
  std::uint32_t ztunnelMark = SLUICE_ZTUNNEL_MARK_DEFAULT;  // SO_MARK of ztunnel's sockets
  std::uint16_t outboundPort = SLUICE_OUTBOUND_PORT_DEFAULT;
  // Destination ports never captured (ztunnel's own); at most SLUICE_MAX_PORTS.
  std::vector<std::uint16_t> ztunnelPorts = {15001, 15006, 15008, 15020, 15021, 15000};
  // Size of the original destination table: captured connections open at the same time.
  std::uint32_t maxConnections = SLUICE_ORIG_DST_MAX;
};

// Per-decision totals over all CPUs.
struct CaptureCounters {
  std::array<std::uint64_t, SLUICE_CAPTURE_DECISION_COUNT> values{};
  std::uint64_t operator[](sluice_capture_decision decision) const { return values[decision]; }
};

// "captured", "bypass_mark", ... (the names operators see in metrics and sluicectl).
std::string_view captureDecisionName(sluice_capture_decision decision);

// The loaded capture programs. create() opens, configures and loads them (reusing maps pinned by
// an earlier run, with their entries); attach() hooks them into the cgroup. Maps and links are
// owned here or by their pins; every step reports what failed and what to check.
class CaptureProgram {
 public:
  static Result<CaptureProgram> create(CaptureOptions options);

  CaptureProgram(CaptureProgram&&) noexcept;
  CaptureProgram& operator=(CaptureProgram&&) noexcept;
  ~CaptureProgram();  // pinned links stay attached; unpinned ones detach

  // Attaches connect4, connect6 and sockops at options().cgroupPath and pins the links. Links
  // pinned by an earlier run at the same cgroup are updated in place (no instant without
  // capture); pinned links at another cgroup are replaced.
  Result<void> attach();
  // Detaches the programs and removes the link pins; maps (and enrollments) stay.
  Result<void> detach();
  // detach() and removes the map pins and the pin directory: a clean uninstall.
  Result<void> uninstall();

  // New connections from sockets of this network namespace are captured (existing ones are not
  // touched). @netnsCookie as from netnsCookie() / socketNetnsCookie().
  Result<void> enroll(std::uint64_t netnsCookie);
  Result<void> unenroll(std::uint64_t netnsCookie);  // not enrolled is not an error
  Result<std::vector<std::uint64_t>> enrolledNamespaces() const;

  // Destinations in @cidr (and on @port, 0 = any port) are never captured.
  Result<void> addExclusion(const Cidr& cidr, std::uint16_t port = 0);
  Result<void> removeExclusion(const Cidr& cidr, std::uint16_t port = 0);

  Result<CaptureCounters> counters() const;

  // The original destination of a connection accepted on the outbound listener, removed from the
  // table (see OriginalDestinationTable::take).
  Result<SocketAddress> takeOriginalDestination(int acceptedFd) const;
  const OriginalDestinationTable& originalDestinations() const { return table_; }

  const CaptureOptions& options() const { return options_; }
  bool attached() const { return connect4_ != nullptr; }

 private:
  struct SkeletonDeleter {
    void operator()(sluice_capture* skeleton) const;
  };

  CaptureProgram(CaptureOptions options, std::unique_ptr<sluice_capture, SkeletonDeleter> skeleton,
                 OriginalDestinationTable table);
  Result<void> updateExclusion(const Cidr& cidr, std::uint16_t port, bool add);
  Result<void> removeLinkPins();

  CaptureOptions options_;
  std::unique_ptr<sluice_capture, SkeletonDeleter> skeleton_;
  OriginalDestinationTable table_;
  LinkPtr connect4_;
  LinkPtr connect6_;
  LinkPtr sockops_;
};

}  // namespace sluice::bpf
