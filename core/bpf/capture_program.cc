#include "core/bpf/capture_program.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bpf/capture.skel.h"
#include "core/bpf/kernel.h"

namespace sluice::bpf {
namespace {

struct LinkSpec {
  const char* name;  // program section, for messages
  const char* pin;   // file under the pin directory
  bpf_attach_type attachType;
};

constexpr LinkSpec kSockops = {"sockops", "link_sockops", BPF_CGROUP_SOCK_OPS};
constexpr LinkSpec kConnect4 = {"cgroup/connect4", "link_connect4", BPF_CGROUP_INET4_CONNECT};
constexpr LinkSpec kConnect6 = {"cgroup/connect6", "link_connect6", BPF_CGROUP_INET6_CONNECT};

std::string pinPath(const CaptureOptions& options, const char* file) {
  return options.pinDirectory.empty() ? std::string() : options.pinDirectory + "/" + file;
}

}  // namespace

std::string_view captureDecisionName(sluice_capture_decision decision) {
  switch (decision) {
    case SLUICE_CAPTURED:
      return "captured";
    case SLUICE_BYPASS_MARK:
      return "bypass_mark";
    case SLUICE_BYPASS_NOT_ENROLLED:
      return "bypass_not_enrolled";
    case SLUICE_BYPASS_PROTOCOL:
      return "bypass_protocol";
    case SLUICE_BYPASS_LOOPBACK:
      return "bypass_loopback";
    case SLUICE_BYPASS_PORT:
      return "bypass_port";
    case SLUICE_BYPASS_EXCLUDED:
      return "bypass_excluded";
    case SLUICE_ORIG_DST_PUBLISHED:
      return "orig_dst_published";
    case SLUICE_ORIG_DST_DISCARDED:
      return "orig_dst_discarded";
    case SLUICE_ERROR_NO_STORAGE:
      return "error_no_storage";
    case SLUICE_ERROR_ORIG_DST_UPDATE:
      return "error_orig_dst_update";
    case SLUICE_CAPTURE_DECISION_COUNT:
      break;
  }
  return "unknown";
}

void CaptureProgram::SkeletonDeleter::operator()(sluice_capture* skeleton) const {
  sluice_capture__destroy(skeleton);
}

CaptureProgram::CaptureProgram(CaptureOptions options,
                               std::unique_ptr<sluice_capture, SkeletonDeleter> skeleton,
                               OriginalDestinationTable table)
    : options_(std::move(options)), skeleton_(std::move(skeleton)), table_(std::move(table)) {}

CaptureProgram::CaptureProgram(CaptureProgram&&) noexcept = default;
CaptureProgram& CaptureProgram::operator=(CaptureProgram&&) noexcept = default;
// Links go first (declared last): an unpinned link detaches before its program is closed.
CaptureProgram::~CaptureProgram() = default;

Result<CaptureProgram> CaptureProgram::create(CaptureOptions options) {
  if (options.ztunnelPorts.size() > SLUICE_MAX_PORTS) {
    return makeError("at most " + std::to_string(SLUICE_MAX_PORTS) + " ztunnel ports, got " +
                     std::to_string(options.ztunnelPorts.size()));
  }
  if (options.maxConnections == 0) return makeError("maxConnections must be positive");
  if (!options.pinDirectory.empty()) {
    auto prepared = preparePinDirectory(options.pinDirectory);
    if (!prepared) return prepared.error();
  }

  std::unique_ptr<sluice_capture, SkeletonDeleter> skeleton(sluice_capture__open());
  if (!skeleton) return systemError("open capture BPF object", errno);
  auto* rodata = skeleton->rodata;
  rodata->ztunnel_mark = options.ztunnelMark;
  rodata->outbound_port = options.outboundPort;
  std::fill(std::begin(rodata->ztunnel_ports), std::end(rodata->ztunnel_ports), 0);
  std::copy(options.ztunnelPorts.begin(), options.ztunnelPorts.end(), rodata->ztunnel_ports);
  int err = bpf_map__set_max_entries(skeleton->maps.orig_dst, options.maxConnections);
  if (err != 0) return systemError("size original destination table", -err);
  if (!options.pinDirectory.empty()) setMapPinPaths(skeleton->obj, options.pinDirectory);

  err = sluice_capture__load(skeleton.get());
  if (err != 0) {
    auto error = systemError("load capture programs", -err);
    error.message +=
        " (libbpf's log above names the step; a kernel without the features (see "
        "checkKernelSupport), or maps pinned under " +
        options.pinDirectory + " by an incompatible version: uninstall first)";
    return error;
  }
  int tableFd = dup(bpf_map__fd(skeleton->maps.orig_dst));
  if (tableFd < 0) return systemError("duplicate original destination table fd", errno);
  OriginalDestinationTable table{UniqueFd(tableFd)};
  return CaptureProgram(std::move(options), std::move(skeleton), std::move(table));
}

Result<void> CaptureProgram::attach() {
  if (attached()) return success();
  const std::string& cgroup = options_.cgroupPath;
  if (cgroup.empty()) return makeError("attach capture programs: no cgroup path configured");
  UniqueFd cgroupFd(open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroupFd.valid()) return systemError("open cgroup " + cgroup, errno);
  auto id = cgroupId(cgroup);
  if (!id) return id.error();

  auto attachOne = [&](const LinkSpec& spec, bpf_program* program) -> Result<LinkPtr> {
    std::string what = std::string(spec.name) + " at " + cgroup;
    LinkTarget target{BPF_LINK_TYPE_CGROUP, spec.attachType, *id};
    return attachOrUpdate(program, target, pinPath(options_, spec.pin), what,
                          [&]() -> Result<LinkPtr> {
                            LinkPtr link(bpf_program__attach_cgroup(program, cgroupFd.get()));
                            if (!link) return systemError("attach " + what, errno);
                            return link;
                          });
  };
  // sockops first: a connect captured before it was there would have no original destination.
  auto sockops = attachOne(kSockops, skeleton_->progs.sluice_sockops);
  if (!sockops) return sockops.error();
  auto connect4 = attachOne(kConnect4, skeleton_->progs.sluice_connect4);
  if (!connect4) return connect4.error();
  auto connect6 = attachOne(kConnect6, skeleton_->progs.sluice_connect6);
  if (!connect6) return connect6.error();
  sockops_ = std::move(*sockops);
  connect4_ = std::move(*connect4);
  connect6_ = std::move(*connect6);
  return success();
}

Result<void> CaptureProgram::removeLinkPins() {
  if (options_.pinDirectory.empty()) return success();
  // connect hooks first, sockops last, for the same reason as in attach().
  for (const LinkSpec* spec : {&kConnect4, &kConnect6, &kSockops}) {
    std::string path = pinPath(options_, spec->pin);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return systemError("unpin " + path, errno);
  }
  return success();
}

Result<void> CaptureProgram::detach() {
  // A pin holds a link attached; with the pins gone, dropping our fds detaches the programs. This
  // also detaches links pinned by an earlier run that this object never opened.
  auto unpinned = removeLinkPins();
  if (!unpinned) return unpinned;
  connect4_.reset();
  connect6_.reset();
  sockops_.reset();
  return success();
}

Result<void> CaptureProgram::uninstall() {
  auto detached = detach();
  if (!detached) return detached;
  if (options_.pinDirectory.empty()) return success();
  return unpinMaps(skeleton_->obj, options_.pinDirectory);
}

Result<void> CaptureProgram::enroll(std::uint64_t netnsCookie) {
  return addNetnsCookie(bpf_map__fd(skeleton_->maps.enrolled), netnsCookie,
                        "map enrolled");
}

Result<void> CaptureProgram::unenroll(std::uint64_t netnsCookie) {
  return removeNetnsCookie(bpf_map__fd(skeleton_->maps.enrolled), netnsCookie,
                        "map enrolled");
}

Result<std::vector<std::uint64_t>> CaptureProgram::enrolledNamespaces() const {
  return listNetnsCookies(bpf_map__fd(skeleton_->maps.enrolled),
                        "map enrolled");
}

Result<void> CaptureProgram::updateExclusion(const Cidr& cidr, std::uint16_t port, bool add) {
  sluice_exclude_key key{};
  int prefix = cidr.mappedPrefixLength();
  key.prefixlen = 16 + static_cast<std::uint32_t>(prefix);
  key.port = htons(port);
  // Host bits are cleared so that 198.18.0.1/15 and 198.18.0.0/15 name the same entry.
  for (int i = 0; i < 16; ++i) {
    int bits = std::clamp(prefix - 8 * i, 0, 8);
    key.addr[i] = cidr.address.bytes[i] & static_cast<std::uint8_t>(0xff00 >> bits);
  }
  int fd = bpf_map__fd(skeleton_->maps.exclude);
  std::string what = cidr.toString() + (port ? " port " + std::to_string(port) : "");
  if (add) {
    sluice_exclude_value value{};
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
      return systemError("exclude " + what, errno);
    }
  } else if (bpf_map_delete_elem(fd, &key) != 0 && errno != ENOENT) {
    return systemError("remove exclusion " + what, errno);
  }
  return success();
}

Result<void> CaptureProgram::addExclusion(const Cidr& cidr, std::uint16_t port) {
  return updateExclusion(cidr, port, true);
}

Result<void> CaptureProgram::removeExclusion(const Cidr& cidr, std::uint16_t port) {
  return updateExclusion(cidr, port, false);
}

Result<CaptureCounters> CaptureProgram::counters() const {
  auto totals = readPerCpuCounters(bpf_map__fd(skeleton_->maps.capture_counters),
                                   SLUICE_CAPTURE_DECISION_COUNT, "capture counters");
  if (!totals) return totals.error();
  CaptureCounters counters;
  std::copy(totals->begin(), totals->end(), counters.values.begin());
  return counters;
}

Result<SocketAddress> CaptureProgram::takeOriginalDestination(int acceptedFd) const {
  return table_.take(acceptedFd);
}

}  // namespace sluice::bpf
