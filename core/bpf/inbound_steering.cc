#include "core/bpf/inbound_steering.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "bpf/inbound.skel.h"

namespace sluice::bpf {

std::string_view inboundDecisionName(sluice_inbound_decision decision) {
  switch (decision) {
    case SLUICE_INBOUND_STEERED:
      return "steered";
    case SLUICE_INBOUND_PASS_LOCAL:
      return "pass_local";
    case SLUICE_INBOUND_PASS_PORT:
      return "pass_port";
    case SLUICE_INBOUND_PASS_PROTOCOL:
      return "pass_protocol";
    case SLUICE_INBOUND_DROP_NO_LISTENER:
      return "drop_no_listener";
    case SLUICE_INBOUND_DROP_ASSIGN_FAILED:
      return "drop_assign_failed";
    case SLUICE_INBOUND_DECISION_COUNT:
      break;
  }
  return "unknown";
}

void InboundSteering::SkeletonDeleter::operator()(sluice_inbound* skeleton) const {
  sluice_inbound__destroy(skeleton);
}

InboundSteering::InboundSteering(InboundOptions options,
                                 std::unique_ptr<sluice_inbound, SkeletonDeleter> skeleton)
    : options_(std::move(options)), skeleton_(std::move(skeleton)) {}

InboundSteering::InboundSteering(InboundSteering&&) noexcept = default;
InboundSteering& InboundSteering::operator=(InboundSteering&&) noexcept = default;
InboundSteering::~InboundSteering() = default;  // link_ (declared last) goes first

Result<InboundSteering> InboundSteering::create(InboundOptions options) {
  if (options.bypassPorts.size() > SLUICE_MAX_PORTS) {
    return makeError("at most " + std::to_string(SLUICE_MAX_PORTS) + " bypass ports, got " +
                     std::to_string(options.bypassPorts.size()));
  }
  if (!options.pinDirectory.empty()) {
    auto prepared = preparePinDirectory(options.pinDirectory);
    if (!prepared) return prepared.error();
  }
  std::unique_ptr<sluice_inbound, SkeletonDeleter> skeleton(sluice_inbound__open());
  if (!skeleton) return systemError("open inbound BPF object", errno);
  auto& ports = skeleton->rodata->bypass_ports;
  std::fill(std::begin(ports), std::end(ports), 0);
  std::copy(options.bypassPorts.begin(), options.bypassPorts.end(), ports);
  if (!options.pinDirectory.empty()) setMapPinPaths(skeleton->obj, options.pinDirectory);
  int err = sluice_inbound__load(skeleton.get());
  if (err != 0) {
    auto error = systemError("load sk_lookup program", -err);
    error.message += " (needs Linux 5.9+ with sk_lookup; see libbpf's log above)";
    return error;
  }
  return InboundSteering(std::move(options), std::move(skeleton));
}

std::string InboundSteering::linkPinPath() const {
  return options_.pinDirectory.empty() ? std::string() : options_.pinDirectory + "/link_sk_lookup";
}

Result<void> InboundSteering::attach(int netnsFd) {
  if (attached()) return success();
  struct stat st {};
  if (fstat(netnsFd, &st) != 0) return systemError("inspect netns fd", errno);
  std::string what = "sk_lookup in netns " + std::to_string(st.st_ino);
  bpf_program* program = skeleton_->progs.sluice_sk_lookup;
  LinkTarget target{BPF_LINK_TYPE_NETNS, BPF_SK_LOOKUP, st.st_ino};
  auto link = attachOrUpdate(program, target, linkPinPath(), what, [&]() -> Result<LinkPtr> {
    LinkPtr fresh(bpf_program__attach_netns(program, netnsFd));
    if (!fresh) return systemError("attach " + what, errno);
    return fresh;
  });
  if (!link) return link.error();
  link_ = std::move(*link);
  return success();
}

Result<void> InboundSteering::detach() {
  std::string pin = linkPinPath();
  if (!pin.empty() && unlink(pin.c_str()) != 0 && errno != ENOENT) {
    return systemError("unpin " + pin, errno);
  }
  link_.reset();
  return success();
}

Result<void> InboundSteering::uninstall() {
  auto detached = detach();
  if (!detached) return detached;
  if (options_.pinDirectory.empty()) return success();
  return unpinMaps(skeleton_->obj, options_.pinDirectory);
}

Result<void> InboundSteering::setListener(int listenerFd) {
  int family = 0;
  int v6only = 0;
  socklen_t length = sizeof(family);
  if (getsockopt(listenerFd, SOL_SOCKET, SO_DOMAIN, &family, &length) != 0) {
    return systemError("inspect inbound listener", errno);
  }
  length = sizeof(v6only);
  if (family == AF_INET6 &&
      getsockopt(listenerFd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &length) != 0) {
    return systemError("inspect inbound listener", errno);
  }
  std::uint32_t slot = v6only ? SLUICE_INBOUND_LISTENER6 : SLUICE_INBOUND_LISTENER;
  std::uint64_t fd = static_cast<std::uint64_t>(listenerFd);
  if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.inbound_listener), &slot, &fd, BPF_ANY)) {
    int err = errno;
    auto error = systemError("register inbound listener", err);
    if (err == EOPNOTSUPP) error.message += " (must be a listening TCP socket)";
    return error;
  }
  return success();
}

Result<void> InboundSteering::clearListeners() {
  int fd = bpf_map__fd(skeleton_->maps.inbound_listener);
  for (std::uint32_t slot = 0; slot < SLUICE_INBOUND_SLOT_COUNT; ++slot) {
    if (bpf_map_delete_elem(fd, &slot) != 0 && errno != ENOENT && errno != EINVAL) {
      return systemError("unregister inbound listener", errno);
    }
  }
  return success();
}

Result<InboundCounters> InboundSteering::counters() const {
  auto totals = readPerCpuCounters(bpf_map__fd(skeleton_->maps.inbound_counters),
                                   SLUICE_INBOUND_DECISION_COUNT, "inbound counters");
  if (!totals) return totals.error();
  InboundCounters counters;
  std::copy(totals->begin(), totals->end(), counters.values.begin());
  return counters;
}

int InboundSteering::programFd() const {
  return bpf_program__fd(skeleton_->progs.sluice_sk_lookup);
}

}  // namespace sluice::bpf
