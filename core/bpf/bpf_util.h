// RAII handles, errors with what to check, and the pinning steps the BPF loaders share.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/net/unique_fd.h"
#include "core/result.h"

struct bpf_link;
struct bpf_object;
struct bpf_program;

namespace sluice::bpf {

using net::UniqueFd;

// bpf_link__destroy: detaches an unpinned link; a pinned one stays attached through its pin.
struct LinkDeleter {
  void operator()(bpf_link* link) const;
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// "<action>: <strerror>" plus what to check for the usual causes (privileges, missing paths).
Error systemError(std::string_view action, int err);

// Creates @directory on a BPF filesystem (its parent must be one), or checks an existing one.
Result<void> preparePinDirectory(const std::string& directory);

// Gives every non-internal map of @object the pin path "<directory>/<map name>": at load libbpf
// reuses a map already pinned there (keeping its entries) or creates and pins a new one.
void setMapPinPaths(bpf_object* object, const std::string& directory);

// Removes the maps' pins and then @directory if it is left empty.
Result<void> unpinMaps(bpf_object* object, const std::string& directory);

// Where a link is attached, to tell whether a pinned link can be updated in place.
struct LinkTarget {
  std::uint32_t linkType = 0;    // enum bpf_link_type
  std::uint32_t attachType = 0;  // enum bpf_attach_type
  std::uint64_t objectId = 0;    // cgroup id, or netns inode
};

// Attaches @program through @attachNew unless a link pinned at @pinPath already targets @target;
// then that link is switched to @program in place (BPF_LINK_UPDATE), so there is no moment without
// a program. A pinned link elsewhere (or defunct) is replaced once the new link is attached, and
// stays in force if attaching fails. With an empty @pinPath the returned link is the only
// reference: it detaches when destroyed.
Result<LinkPtr> attachOrUpdate(bpf_program* program, const LinkTarget& target,
                               const std::string& pinPath, std::string_view what,
                               const std::function<Result<LinkPtr>()>& attachNew);

// Sum over CPUs of each slot of a BPF_MAP_TYPE_PERCPU_ARRAY of __u64.
Result<std::vector<std::uint64_t>> readPerCpuCounters(int mapFd, std::uint32_t slots,
                                                      std::string_view what);

// The set of enrolled network namespaces (a hash map netns cookie -> sluice_enrolled_value), as
// kept by capture and by acceleration alike. @what names the map in errors.
Result<void> addNetnsCookie(int mapFd, std::uint64_t cookie, std::string_view what);
// Removing a cookie that is not there is not an error.
Result<void> removeNetnsCookie(int mapFd, std::uint64_t cookie, std::string_view what);
Result<std::vector<std::uint64_t>> listNetnsCookies(int mapFd, std::string_view what);

}  // namespace sluice::bpf
