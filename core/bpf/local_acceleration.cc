#include "core/bpf/local_acceleration.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "bpf/accel.skel.h"
#include "core/bpf/kernel.h"

namespace sluice::bpf {
namespace {

constexpr const char* kSockopsPin = "link_accel_sockops";

std::string pinPath(const LocalAccelerationOptions& options, const char* file) {
  return options.pinDirectory.empty() ? std::string() : options.pinDirectory + "/" + file;
}

}  // namespace

std::string_view accelerationDecisionName(sluice_accel_decision decision) {
  switch (decision) {
    case SLUICE_ACCEL_SOCKET_ADDED:
      return "socket_added";
    case SLUICE_ACCEL_SOCKET_CLOSED:
      return "socket_closed";
    case SLUICE_ACCEL_REDIRECTED:
      return "redirected";
    case SLUICE_ACCEL_REDIRECTED_BYTES:
      return "redirected_bytes";
    case SLUICE_ACCEL_PASS_NO_PEER:
      return "pass_no_peer";
    case SLUICE_ACCEL_PASS_STICKY:
      return "pass_sticky";
    case SLUICE_ACCEL_ERROR_NO_STORAGE:
      return "error_no_storage";
    case SLUICE_ACCEL_ERROR_MAP_UPDATE:
      return "error_map_update";
    case SLUICE_ACCEL_DECISION_COUNT:
      break;
  }
  return "unknown";
}

void LocalAcceleration::SkeletonDeleter::operator()(sluice_accel* skeleton) const {
  sluice_accel__destroy(skeleton);
}

LocalAcceleration::LocalAcceleration(LocalAccelerationOptions options,
                                     std::unique_ptr<sluice_accel, SkeletonDeleter> skeleton)
    : options_(std::move(options)), skeleton_(std::move(skeleton)) {}

LocalAcceleration::LocalAcceleration(LocalAcceleration&&) noexcept = default;
LocalAcceleration& LocalAcceleration::operator=(LocalAcceleration&&) noexcept = default;
// The link goes first (declared last): an unpinned link detaches before its program is closed.
// The sk_msg program stays referenced by the SOCKHASH while the map lives (pinned or in use).
LocalAcceleration::~LocalAcceleration() = default;

Result<void> LocalAcceleration::checkKernelSupport() {
  struct Probe {
    const char* what;
    int supported;
  };
  const Probe probes[] = {
      {"program type sockops", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nullptr)},
      {"program type sk_msg", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, nullptr)},
      {"map type sockhash", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, nullptr)},
      {"map type sk_storage", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr)},
      {"helper bpf_sock_hash_update in sockops",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sock_hash_update, nullptr)},
      {"helper bpf_get_netns_cookie in sockops (Linux 5.15+)",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie, nullptr)},
      {"helper bpf_msg_redirect_hash in sk_msg",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash, nullptr)},
      {"helper bpf_get_netns_cookie in sk_msg (Linux 5.15+)",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_get_netns_cookie, nullptr)},
      {"helper bpf_sk_storage_get in sk_msg",
       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_sk_storage_get, nullptr)},
  };
  std::string missing;
  for (const auto& probe : probes) {
    if (probe.supported == 1) continue;
    if (probe.supported < 0) {
      return systemError(std::string("probe ") + probe.what, -probe.supported);
    }
    missing += missing.empty() ? "" : ", ";
    missing += probe.what;
  }
  if (!missing.empty()) {
    return makeError("the kernel lacks BPF features local acceleration needs: " + missing);
  }
  return success();
}

Result<LocalAcceleration> LocalAcceleration::create(LocalAccelerationOptions options) {
  if (options.ports.size() > SLUICE_MAX_PORTS) {
    return makeError("at most " + std::to_string(SLUICE_MAX_PORTS) + " accelerated ports, got " +
                     std::to_string(options.ports.size()));
  }
  if (options.maxSockets == 0) return makeError("maxSockets must be positive");
  if (!options.pinDirectory.empty()) {
    auto prepared = preparePinDirectory(options.pinDirectory);
    if (!prepared) return prepared.error();
  }

  std::unique_ptr<sluice_accel, SkeletonDeleter> skeleton(sluice_accel__open());
  if (!skeleton) return systemError("open acceleration BPF object", errno);
  auto* rodata = skeleton->rodata;
  std::fill(std::begin(rodata->accel_ports), std::end(rodata->accel_ports), 0);
  std::copy(options.ports.begin(), options.ports.end(), rodata->accel_ports);
  int err = bpf_map__set_max_entries(skeleton->maps.accel_sockets, options.maxSockets);
  if (err != 0) return systemError("size acceleration socket map", -err);
  if (!options.pinDirectory.empty()) setMapPinPaths(skeleton->obj, options.pinDirectory);

  err = sluice_accel__load(skeleton.get());
  if (err != 0) {
    auto error = systemError("load acceleration programs", -err);
    error.message +=
        " (libbpf's log above names the step; needs SOCKHASH, sk_msg and socket storage in "
        "sk_msg (Linux 5.15+), or maps pinned under " +
        options.pinDirectory + " by an incompatible version: uninstall first)";
    return error;
  }
  return LocalAcceleration(std::move(options), std::move(skeleton));
}

Result<void> LocalAcceleration::attach() {
  if (attached()) return success();
  const std::string& cgroup = options_.cgroupPath;
  if (cgroup.empty()) return makeError("attach acceleration programs: no cgroup path configured");
  UniqueFd cgroupFd(open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroupFd.valid()) return systemError("open cgroup " + cgroup, errno);
  auto id = cgroupId(cgroup);
  if (!id) return id.error();

  // sk_msg first: a socket takes the map's programs when it is inserted, so sockets added before
  // it would never be accelerated. Linux 6.1 has no BPF link for map programs (6.10 has): the
  // attachment lives in the map, and replaces an earlier run's program.
  int mapFd = bpf_map__fd(skeleton_->maps.accel_sockets);
  if (bpf_prog_attach(bpf_program__fd(skeleton_->progs.sluice_accel_msg), mapFd, BPF_SK_MSG_VERDICT,
                      0) != 0) {
    return systemError("attach sk_msg to the acceleration socket map", errno);
  }
  bpf_program* program = skeleton_->progs.sluice_accel_sockops;
  std::string what = "acceleration sockops at " + cgroup;
  LinkTarget target{BPF_LINK_TYPE_CGROUP, BPF_CGROUP_SOCK_OPS, *id};
  auto link = attachOrUpdate(program, target, pinPath(options_, kSockopsPin), what,
                             [&]() -> Result<LinkPtr> {
                               LinkPtr link(bpf_program__attach_cgroup(program, cgroupFd.get()));
                               if (!link) return systemError("attach " + what, errno);
                               return link;
                             });
  if (!link) return link.error();
  sockops_ = std::move(*link);
  return success();
}

Result<void> LocalAcceleration::removeLinkPin() {
  if (options_.pinDirectory.empty()) return success();
  std::string path = pinPath(options_, kSockopsPin);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return systemError("unpin " + path, errno);
  return success();
}

Result<void> LocalAcceleration::detach() {
  auto unpinned = removeLinkPin();
  if (!unpinned) return unpinned;
  sockops_.reset();
  // Detaching needs the attached program; an earlier run's may be there, so ours replaces it
  // first (Linux 6.1 cannot query a map's programs).
  int mapFd = bpf_map__fd(skeleton_->maps.accel_sockets);
  int progFd = bpf_program__fd(skeleton_->progs.sluice_accel_msg);
  if (bpf_prog_attach(progFd, mapFd, BPF_SK_MSG_VERDICT, 0) != 0 ||
      bpf_prog_detach2(progFd, mapFd, BPF_SK_MSG_VERDICT) != 0) {
    return systemError("detach sk_msg from the acceleration socket map", errno);
  }
  return success();
}

Result<void> LocalAcceleration::uninstall() {
  auto detached = detach();
  if (!detached) return detached;
  if (options_.pinDirectory.empty()) return success();
  return unpinMaps(skeleton_->obj, options_.pinDirectory);
}

Result<void> LocalAcceleration::enroll(std::uint64_t netnsCookie) {
  return addNetnsCookie(bpf_map__fd(skeleton_->maps.accel_enrolled), netnsCookie,
                        "map accel_enrolled");
}

Result<void> LocalAcceleration::unenroll(std::uint64_t netnsCookie) {
  return removeNetnsCookie(bpf_map__fd(skeleton_->maps.accel_enrolled), netnsCookie,
                        "map accel_enrolled");
}

Result<std::vector<std::uint64_t>> LocalAcceleration::enrolledNamespaces() const {
  return listNetnsCookies(bpf_map__fd(skeleton_->maps.accel_enrolled),
                        "map accel_enrolled");
}

Result<AccelerationCounters> LocalAcceleration::counters() const {
  auto totals = readPerCpuCounters(bpf_map__fd(skeleton_->maps.accel_counters),
                                   SLUICE_ACCEL_DECISION_COUNT, "acceleration counters");
  if (!totals) return totals.error();
  AccelerationCounters counters;
  std::copy(totals->begin(), totals->end(), counters.values.begin());
  return counters;
}

Result<std::size_t> LocalAcceleration::socketCount() const {
  int fd = bpf_map__fd(skeleton_->maps.accel_sockets);
  std::size_t count = 0;
  sluice_conn_key key{};
  sluice_conn_key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(fd, previous, &next) == 0) {
    ++count;
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return systemError("list acceleration socket map", errno);
  return count;
}

}  // namespace sluice::bpf
