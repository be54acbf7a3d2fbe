// Helpers shared by the identity tests: a unique temp dir and a fixed clock reading.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

namespace sluice::identity::testing {

// A directory unique to this run, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-identity-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A whole-second instant, so certificate times (second precision) compare exactly.
inline std::chrono::system_clock::time_point fixedNow() {
  using namespace std::chrono;
  return sys_days{year{2026} / January / 15} + hours(10);
}

}  // namespace sluice::identity::testing
