#include "core/bpf/bpf_util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf/include/sluice_shared.h"

namespace sluice::bpf {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;  // BPF_FS_MAGIC, <linux/magic.h>

bool onBpfFs(const std::string& path, int& err) {
  struct statfs fs {};
  if (statfs(path.c_str(), &fs) != 0) {
    err = errno;
    return false;
  }
  err = 0;
  return fs.f_type == kBpfFsMagic;
}

std::string parentOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool sameTarget(const bpf_link_info& info, const LinkTarget& target) {
  if (info.type != target.linkType) return false;
  switch (info.type) {
    case BPF_LINK_TYPE_CGROUP:
      return info.cgroup.attach_type == target.attachType &&
             info.cgroup.cgroup_id == target.objectId;
    case BPF_LINK_TYPE_NETNS:
      return info.netns.attach_type == target.attachType && info.netns.netns_ino == target.objectId;
    default:
      return false;
  }
}

}  // namespace

void LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

Error systemError(std::string_view action, int err) {
  std::string message(action);
  message += ": ";
  message += std::strerror(err);
  if (err == EPERM || err == EACCES) message += " (needs root, or CAP_BPF and CAP_NET_ADMIN)";
  return Error{std::move(message)};
}

Result<void> preparePinDirectory(const std::string& directory) {
  int err = 0;
  if (onBpfFs(directory, err)) return success();
  if (err == 0) {
    return makeError("pin directory " + directory +
                     " is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)");
  }
  if (err != ENOENT) return systemError("pin directory " + directory, err);
  std::string parent = parentOf(directory);
  if (!onBpfFs(parent, err)) {
    if (err == ENOENT) {
      auto made = preparePinDirectory(parent);
      if (!made) return made;
    } else {
      return makeError("cannot create pin directory " + directory + ": " + parent +
                       " is not a BPF filesystem (mount -t bpf bpf " + parent + ")");
    }
  }
  if (mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    return systemError("create pin directory " + directory, errno);
  }
  return success();
}

void setMapPinPaths(bpf_object* object, const std::string& directory) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, object) {
    if (bpf_map__is_internal(map)) continue;  // .rodata/.bss: rebuilt with each load
    std::string path = directory + "/" + bpf_map__name(map);
    bpf_map__set_pin_path(map, path.c_str());
  }
}

Result<void> unpinMaps(bpf_object* object, const std::string& directory) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, object) {
    const char* path = bpf_map__pin_path(map);
    if (path == nullptr) continue;
    if (unlink(path) != 0 && errno != ENOENT)
      return systemError(std::string("unpin ") + path, errno);
  }
  // Other users of the directory (per-netns steering pins) keep it alive.
  if (rmdir(directory.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
    return systemError("remove pin directory " + directory, errno);
  }
  return success();
}

Result<LinkPtr> attachOrUpdate(bpf_program* program, const LinkTarget& target,
                               const std::string& pinPath, std::string_view what,
                               const std::function<Result<LinkPtr>()>& attachNew) {
  LinkPtr stale;
  if (!pinPath.empty() && access(pinPath.c_str(), F_OK) == 0) {
    LinkPtr pinned(bpf_link__open(pinPath.c_str()));
    if (!pinned) return systemError("open pinned link " + pinPath, errno);
    bpf_link_info info{};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_link__fd(pinned.get()), &info, &length) != 0) {
      return systemError("inspect pinned link " + pinPath, errno);
    }
    if (sameTarget(info, target)) {
      int err = bpf_link__update_program(pinned.get(), program);
      if (err != 0)
        return systemError(std::string("update ") + std::string(what) + " in place", -err);
      return pinned;
    }
    stale = std::move(pinned);
  }
  Result<LinkPtr> fresh = attachNew();
  if (!fresh) return fresh.error();
  if (stale) {
    // Unpinning leaves the stale link attached through our fd until reset() below.
    int err = bpf_link__unpin(stale.get());
    if (err != 0) return systemError("unpin stale link " + pinPath, -err);
    stale.reset();
  }
  if (!pinPath.empty()) {
    int err = bpf_link__pin(fresh->get(), pinPath.c_str());
    if (err != 0)
      return systemError(std::string("pin ") + std::string(what) + " at " + pinPath, -err);
  }
  return fresh;
}

Result<std::vector<std::uint64_t>> readPerCpuCounters(int mapFd, std::uint32_t slots,
                                                      std::string_view what) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return systemError("count possible CPUs", -cpus);
  std::vector<std::uint64_t> perCpu(static_cast<std::size_t>(cpus));
  std::vector<std::uint64_t> totals(slots);
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    if (bpf_map_lookup_elem(mapFd, &slot, perCpu.data()) != 0) {
      return systemError("read " + std::string(what), errno);
    }
    for (auto value : perCpu) totals[slot] += value;
  }
  return totals;
}

Result<void> addNetnsCookie(int mapFd, std::uint64_t cookie, std::string_view what) {
  sluice_enrolled_value value{};
  if (bpf_map_update_elem(mapFd, &cookie, &value, BPF_ANY) == 0) return success();
  const int err = errno;
  auto error = systemError(
      "enroll netns cookie " + std::to_string(cookie) + " in " + std::string(what), err);
  if (err == E2BIG) error.message += " (map full)";
  return error;
}

Result<void> removeNetnsCookie(int mapFd, std::uint64_t cookie, std::string_view what) {
  if (bpf_map_delete_elem(mapFd, &cookie) != 0 && errno != ENOENT)
    return systemError(
        "unenroll netns cookie " + std::to_string(cookie) + " from " + std::string(what), errno);
  return success();
}

Result<std::vector<std::uint64_t>> listNetnsCookies(int mapFd, std::string_view what) {
  std::vector<std::uint64_t> cookies;
  std::uint64_t key = 0;
  std::uint64_t next = 0;
  const void* previous = nullptr;
  while (bpf_map_get_next_key(mapFd, previous, &next) == 0) {
    cookies.push_back(next);
    key = next;
    previous = &key;
  }
  if (errno != ENOENT) return systemError("list " + std::string(what), errno);
  return cookies;
}

}  // namespace sluice::bpf
