// Inbound steering for one pod network namespace: sk_lookup + the SOCKMAP of ztunnel's listener.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/include/sluice_shared.h"
#include "core/bpf/bpf_util.h"
#include "core/result.h"

struct sluice_inbound;  // generated skeleton (bpf/inbound.skel.h)

namespace sluice::bpf {

struct InboundOptions {
  // Local ports whose connections keep the normal lookup: HBONE, which ztunnel binds in the pod
  // itself, and ztunnel's admin ports. At most SLUICE_MAX_PORTS.
  std::vector<std::uint16_t> bypassPorts = {15008, 15020, 15021, 15000};
  // Where this namespace's link and maps are pinned, e.g. /sys/fs/bpf/sluice/netns-<cookie>.
  // Pinned, steering survives a restart of the agent and the next create()+attach() takes it over
  // (with the registered listener). Empty: steering ends when the object is destroyed.
  std::string pinDirectory;
};

struct InboundCounters {
  std::array<std::uint64_t, SLUICE_INBOUND_DECISION_COUNT> values{};
  std::uint64_t operator[](sluice_inbound_decision decision) const { return values[decision]; }
};

std::string_view inboundDecisionName(sluice_inbound_decision decision);

// One pod netns's steering: connections from outside the pod to any port but the bypass ports are
// assigned to the registered inbound listener; with no listener registered they are refused
// (fail closed). Closing the listener socket unregisters it (the kernel drops it from the map).
class InboundSteering {
 public:
  static Result<InboundSteering> create(InboundOptions options = {});

  InboundSteering(InboundSteering&&) noexcept;
  InboundSteering& operator=(InboundSteering&&) noexcept;
  ~InboundSteering();  // a pinned link stays attached; an unpinned one detaches

  // Attaches to the network namespace behind @netnsFd (an nsfs fd). A link pinned by an earlier
  // run for the same namespace is updated in place.
  Result<void> attach(int netnsFd);
  // Detaches and removes the link pin; the listener registration stays in the map.
  Result<void> detach();
  // detach() and removes the map pins and the pin directory.
  Result<void> uninstall();

  // Registers ztunnel's inbound listener (a listening TCP socket in the pod netns). An AF_INET or
  // dual-stack AF_INET6 socket serves both families; an IPV6_V6ONLY socket serves IPv6 only
  // (alongside an AF_INET one for IPv4).
  Result<void> setListener(int listenerFd);
  Result<void> clearListeners();

  Result<InboundCounters> counters() const;

  // The loaded sk_lookup program (for BPF_PROG_TEST_RUN and diagnostics).
  int programFd() const;
  bool attached() const { return link_ != nullptr; }

 private:
  struct SkeletonDeleter {
    void operator()(sluice_inbound* skeleton) const;
  };

  InboundSteering(InboundOptions options, std::unique_ptr<sluice_inbound, SkeletonDeleter> skel);
  std::string linkPinPath() const;

  InboundOptions options_;
  std::unique_ptr<sluice_inbound, SkeletonDeleter> skeleton_;
  LinkPtr link_;
};

}  // namespace sluice::bpf
