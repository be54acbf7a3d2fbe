// Helpers shared by the config tests: a unique temporary directory and report lookups.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/loader.h"

namespace sluice::config::testing {

// A directory unique to this run, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-config-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    path_ = root_ / "config";
    std::filesystem::create_directory(path_);
    std::filesystem::create_directory(root_ / "staging");
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The directory to load or watch.
  const std::filesystem::path& path() const { return path_; }

  // Writes the file next door and renames it in, as editors and kubelet do, so that a watcher
  // sees one complete change.
  std::filesystem::path write(const std::string& name, std::string_view content) const {
    std::filesystem::path target = path_ / name;
    std::filesystem::path staged = root_ / "staging" / target.filename();
    {
      std::ofstream out(staged, std::ios::binary | std::ios::trunc);
      out << content;
    }
    std::filesystem::rename(staged, target);
    return target;
  }

 private:
  std::filesystem::path root_;
  std::filesystem::path path_;
};

inline LoadResult load(std::string_view yaml) { return loadString(yaml, "test.yaml"); }
// `header` (a document's fixed first lines) followed by `rest`: line numbers count from the
// header's first line, as in the file a person would write.
inline LoadResult loadAfter(std::string_view header, std::string_view rest) {
  return load(std::string(header) + std::string(rest));
}

// The only report of a single-object load, or a failure naming all of them.
inline DocumentReport onlyReport(const LoadResult& result) {
  if (result.documents.size() != 1) {
    std::string all;
    for (const auto& report : result.documents) all += "\n  " + formatReport(report);
    ADD_FAILURE() << "expected one report, got " << result.documents.size() << ":" << all;
    return {};
  }
  return result.documents.front();
}

// The one object of a kind a load accepted, e.g. onlyObject(result, &Snapshot::gateways); a
// failure (naming the reports) and a default object otherwise.
template <class T>
const T& onlyObject(const LoadResult& result, const std::vector<T>& (Snapshot::*all)() const) {
  static const T kNone{};
  if (result.snapshot == nullptr || ((*result.snapshot).*all)().size() != 1) {
    std::string reports;
    for (const auto& report : result.documents) reports += "\n  " + formatReport(report);
    ADD_FAILURE() << "expected exactly one object of the kind:" << reports;
    return kNone;
  }
  return ((*result.snapshot).*all)().front();
}

// Given a load of one bad object: it is rejected at `line` for `field`, and nothing is built.
inline void expectRejected(const LoadResult& result, int line, std::string_view field,
                           std::string_view reason_part) {
  EXPECT_EQ(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.status, DocumentReport::Status::kRejected) << formatReport(report);
  EXPECT_EQ(report.line, line) << formatReport(report);
  EXPECT_EQ(report.field, field) << formatReport(report);
  EXPECT_THAT(report.reason, ::testing::HasSubstr(reason_part)) << formatReport(report);
  if (!field.empty()) {
    EXPECT_EQ(report.reason.rfind(std::string(field) + ": ", 0), 0u);
  }
}

}  // namespace sluice::config::testing
