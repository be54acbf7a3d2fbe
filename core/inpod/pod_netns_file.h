// A pod netns file: which network namespace each pod of a node has, for nodes whose pods are not
// found through /proc (the local lab writes one; the agent reads it with --pod-netns). The
// format is JSON, {"pods": {"<namespace>/<name>": "/run/netns/<name>", ...}}, written atomically
// (a temporary file renamed over it), so a reader never sees half of it.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/result.h"

namespace sluice::inpod {

using PodNetnsPaths = std::map<std::string, std::filesystem::path>;  // "ns/name" -> netns path

Result<void> writePodNetnsFile(const std::filesystem::path& file, const PodNetnsPaths& pods);
Result<PodNetnsPaths> readPodNetnsFile(const std::filesystem::path& file);

}  // namespace sluice::inpod
