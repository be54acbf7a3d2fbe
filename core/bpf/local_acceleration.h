// Optional local-hop acceleration: sockops + sk_msg SOCKHASH redirection of loopback connections to
// ztunnel's pod-local listeners (DESIGN "Traffic path" 6). Off unless a LocalAcceleration is
// created and attached; nothing else depends on it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/include/sluice_accel.h"
#include "core/bpf/bpf_util.h"
#include "core/result.h"

struct sluice_accel;  // generated skeleton (bpf/accel.skel.h)

namespace sluice::bpf {

struct LocalAccelerationOptions {
  // cgroup v2 directory the sockops program attaches to. Both ends of a local hop must be created
  // by processes in it or below (the application and ztunnel): the node's cgroup root in
  // production; tests give their own.
  std::string cgroupPath;
  // Where maps and the sockops link are pinned (pins are named accel_*, so the directory can be
  // CaptureProgram's). Empty: nothing is pinned and acceleration ends with this object.
  std::string pinDirectory = "/sys/fs/bpf/sluice";
  // Listener ports (on 127.0.0.0/8 or ::1) whose connections are accelerated; at most
  // SLUICE_MAX_PORTS.
  std::vector<std::uint16_t> ports = {SLUICE_OUTBOUND_PORT_DEFAULT};
  // Sockets the SOCKHASH holds at once (two per accelerated connection); when full, new
  // connections simply are not accelerated (counted as error_map_update).
  std::uint32_t maxSockets = SLUICE_ACCEL_SOCKETS_MAX;
};

// Per-decision totals over all CPUs.
struct AccelerationCounters {
  std::array<std::uint64_t, SLUICE_ACCEL_DECISION_COUNT> values{};
  std::uint64_t operator[](sluice_accel_decision decision) const { return values[decision]; }
};

// "socket_added", "redirected", ... (names for metrics and sluicectl).
std::string_view accelerationDecisionName(sluice_accel_decision decision);

// The loaded acceleration programs. Guarantees: bytes are redirected only between two sockets of
// the same connection that are both in the map; anything else takes the normal TCP path, and a
// socket that once took it keeps taking it (no reordering). Closed sockets leave the map (the
// kernel unlinks them). Connections already accelerated stay accelerated until they close, even
// after detach().
class LocalAcceleration {
 public:
  // Checks that the kernel offers what acceleration needs (SOCKHASH, sk_msg and its helpers); the
  // error names each missing one. Capture does not depend on these: an agent may keep running
  // without acceleration when this fails.
  static Result<void> checkKernelSupport();

  // Opens and loads the programs (reusing maps pinned by an earlier run, entries included).
  static Result<LocalAcceleration> create(LocalAccelerationOptions options);

  LocalAcceleration(LocalAcceleration&&) noexcept;
  LocalAcceleration& operator=(LocalAcceleration&&) noexcept;
  ~LocalAcceleration();  // a pinned link and the map's sk_msg program stay; unpinned ones go

  // Attaches sk_msg to the SOCKHASH (replacing the program of an earlier run) and sockops at
  // options().cgroupPath (a pinned link of an earlier run at the same cgroup is updated in place).
  Result<void> attach();
  // Stops accelerating new connections: removes the sockops link (and its pin) and the map's sk_msg
  // program. Open accelerated connections keep their redirection until they close.
  Result<void> detach();
  // detach() and removes the map pins (and the pin directory if empty).
  Result<void> uninstall();

  // New connections of this network namespace are accelerated (netns cookie as from netnsCookie()).
  Result<void> enroll(std::uint64_t netnsCookie);
  Result<void> unenroll(std::uint64_t netnsCookie);  // not enrolled is not an error
  Result<std::vector<std::uint64_t>> enrolledNamespaces() const;

  Result<AccelerationCounters> counters() const;
  // Sockets in the SOCKHASH now (two per open accelerated connection).
  Result<std::size_t> socketCount() const;

  const LocalAccelerationOptions& options() const { return options_; }
  bool attached() const { return sockops_ != nullptr; }

 private:
  struct SkeletonDeleter {
    void operator()(sluice_accel* skeleton) const;
  };

  LocalAcceleration(LocalAccelerationOptions options,
                    std::unique_ptr<sluice_accel, SkeletonDeleter> skeleton);
  Result<void> removeLinkPin();

  LocalAccelerationOptions options_;
  std::unique_ptr<sluice_accel, SkeletonDeleter> skeleton_;
  LinkPtr sockops_;
};

}  // namespace sluice::bpf
