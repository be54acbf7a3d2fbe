// Small kernel operations the lab is made of, each reporting the object and command at fault.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::lab::host {

// Runs `ip <args>`; the error names `object` and the command line with its stderr.
Result<void> ip(std::string_view object, const std::vector<std::string>& args);

// Writes `value` to /proc/sys/<key> inside the network namespace at `netns` (the caller's
// own when empty). Runs on a short-lived thread so the caller's namespace never changes.
Result<void> writeSysctl(const std::filesystem::path& netns, std::string_view key,
                         std::string_view value);

// Whether a network interface of that name exists in the caller's netns / in `netns`.
bool linkExists(std::string_view name);
bool linkExistsIn(const std::filesystem::path& netns, std::string_view name);

// SIGKILLs every process (but the caller) whose network namespace is the one at `netns`;
// returns how many were signalled.
size_t killProcessesIn(const std::filesystem::path& netns);

// Kills every process in the cgroup tree at `cgroup` (cgroup.kill) and waits until the
// tree is empty (cgroup.events says "populated 0").
Result<void> killCgroup(const std::filesystem::path& cgroup, std::chrono::milliseconds timeout);

}  // namespace sluice::lab::host
