// Loading configuration from YAML/JSON files into a Snapshot.
//
// A load is all or nothing: the snapshot is built only when no document is rejected, so a
// caller can keep its last good snapshot in force. Every document gets a report either way.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/decoder.h"
#include "core/config/snapshot.h"

namespace sluice::config {

struct LoadOptions {
  SnapshotOptions snapshot;
};

struct LoadResult {
  // One report per object, in file order then document order.
  std::vector<DocumentReport> documents;
  std::shared_ptr<const Snapshot> snapshot;  // null when any document was rejected

  size_t count(DocumentReport::Status status) const;
};

// Loads files and directories. A directory contributes its *.yaml, *.yml and *.json files
// (not its subdirectories, nor names starting with '.', which keeps Kubernetes ConfigMap
// mounts from being read twice through their `..data` link) in name order; a file named
// explicitly is read whatever its extension. Multi-document files (---), `List` and typed
// lists (`PodList`) work. Two objects with the same (kind, namespace, name) reject the later
// one, naming both places. Unreadable paths and malformed YAML are rejections with a line
// where there is one. Never throws on bad input.
LoadResult loadPaths(const std::vector<std::filesystem::path>& files_or_dirs,
                     const LoadOptions& options = {});

// Loads one file's content (for tests, fuzzing and tools); `file_name` appears in reports.
LoadResult loadString(std::string_view yaml, std::string_view file_name,
                      const LoadOptions& options = {});

// One line for a person:
//   ACCEPTED <file>:<line> <Kind> <ns>/<name>
//   IGNORED <file>:<line> <Kind> <ns>/<name> (kind not used by Sluice)
//   REJECTED <file>:<line> <Kind> <ns>/<name>: <field>: <reason>
// Cluster-scoped objects show just <name>; unknown parts show as "-"; ":<line>" is left out
// when there is no line.
std::string formatReport(const DocumentReport& report);

}  // namespace sluice::config
