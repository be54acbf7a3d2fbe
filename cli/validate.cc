// `sluicectl validate`: loads files and directories exactly as the file source would and
// prints one line per document, so a person can fix a configuration before deploying it.
#include <filesystem>
#include <vector>

#include "cli/command.h"
#include "core/config/loader.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kUsage = R"(usage: sluicectl validate [-q] PATH...

Checks Kubernetes-shaped YAML or JSON files (multi-document files, List and typed lists
included) the way Sluice loads them, and prints one line per document:
  ACCEPTED <file>:<line> <Kind> <namespace>/<name>
  IGNORED <file>:<line> <Kind> <namespace>/<name> (<why>)
  REJECTED <file>:<line> <Kind> <namespace>/<name>: <field>: <reason>
then a summary. A directory contributes its *.yaml, *.yml and *.json files (not its
subdirectories or hidden files); a file named explicitly is read whatever its extension.

options:
  -q, --quiet   print only rejected documents and the summary
  -h, --help    print this help

exit status: 0 when nothing is rejected, 1 when something is, 2 on a usage error.
)";

}  // namespace

int validateCommand(std::span<const std::string> args, Io io) {
  bool quiet = false;
  bool options_done = false;
  std::vector<std::filesystem::path> paths;
  for (const std::string& arg : args) {
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      paths.emplace_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      io.out << kUsage;
      return kExitOk;
    } else if (arg == "-q" || arg == "--quiet") {
      quiet = true;
    } else {
      io.err << "sluicectl validate: unknown option \"" << arg << "\"\n\n" << kUsage;
      return kExitUsage;
    }
  }
  if (paths.empty()) {
    io.err << "sluicectl validate: no PATH given\n\n" << kUsage;
    return kExitUsage;
  }

  using Status = config::DocumentReport::Status;
  config::LoadResult result = config::loadPaths(paths);
  for (const config::DocumentReport& report : result.documents) {
    if (!quiet || report.status == Status::kRejected)
      io.out << config::formatReport(report) << "\n";
  }
  size_t rejected = result.count(Status::kRejected);
  io.out << result.documents.size() << " document(s): " << result.count(Status::kAccepted)
         << " accepted, " << result.count(Status::kIgnored) << " ignored, " << rejected
         << " rejected\n";
  return rejected == 0 ? kExitOk : kExitFailure;
}

}  // namespace sluice::cli
