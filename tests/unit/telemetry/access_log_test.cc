#include "core/telemetry/access_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::telemetry {
namespace {

namespace json = boost::json;

// A directory unique to this test run, removed on every way out.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-accesslog-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> readLines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "2024-05-01T12:00:00.123456Z": RFC 3339, UTC, microseconds.
bool isRfc3339UtcMicros(std::string_view ts) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (ts.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const bool ok = kShape[i] == 'd' ? (ts[i] >= '0' && ts[i] <= '9') : ts[i] == kShape[i];
    if (!ok) return false;
  }
  return true;
}

ConnectionRecord sampleRecord() {
  ConnectionRecord r;
  r.src = "10.0.0.1:43210";
  r.dst = "10.0.0.2:8080";
  r.src_identity = "spiffe://cluster.local/ns/default/sa/sleep";
  r.dst_identity = "spiffe://cluster.local/ns/default/sa/echo";
  r.src_workload = "sleep-6d68f49858-abcde";
  r.dst_workload = "echo-5b7c9d5f4-xyz12";
  r.direction = "outbound";
  r.bytes_sent = 120;
  r.bytes_received = 4096;
  r.duration = std::chrono::microseconds(1234567);
  return r;
}

// Creates a log at `path`, runs `write` against it and destroys it, which drains its queue.
template <class F>
void withLog(const std::filesystem::path& path, F write) {
  auto log = AccessLog::create(path.string());
  ASSERT_TRUE(log.ok()) << log.message();
  write(**log);
}

TEST(AccessLog, WritesOneJsonObjectPerLineWithEveryField) {
  // Given a log file
  TempDir dir;
  const auto path = dir.file("access.log");

  // When one clean and one failed connection are logged
  withLog(path, [](AccessLog& log) {
    log.log(sampleRecord());
    ConnectionRecord failed = sampleRecord();
    failed.direction = "inbound";
    failed.error = "connection refused";
    log.log(failed);
  });

  // Then there are two lines, each a complete JSON object with all fields and types
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    const json::object obj = json::parse(line).as_object();
    EXPECT_TRUE(isRfc3339UtcMicros(obj.at("timestamp").as_string())) << line;
    EXPECT_EQ(obj.at("message").as_string(), "connection complete");
    EXPECT_EQ(obj.at("src").as_string(), "10.0.0.1:43210");
    EXPECT_EQ(obj.at("dst").as_string(), "10.0.0.2:8080");
    EXPECT_EQ(obj.at("src_identity").as_string(), "spiffe://cluster.local/ns/default/sa/sleep");
    EXPECT_EQ(obj.at("dst_identity").as_string(), "spiffe://cluster.local/ns/default/sa/echo");
    EXPECT_EQ(obj.at("src_workload").as_string(), "sleep-6d68f49858-abcde");
    EXPECT_EQ(obj.at("dst_workload").as_string(), "echo-5b7c9d5f4-xyz12");
    EXPECT_EQ(obj.at("bytes_sent").to_number<uint64_t>(), 120u);
    EXPECT_EQ(obj.at("bytes_received").to_number<uint64_t>(), 4096u);
    EXPECT_EQ(obj.at("duration_us").to_number<uint64_t>(), 1234567u);
  }
  const json::object ok = json::parse(lines[0]).as_object();
  EXPECT_EQ(ok.at("level").as_string(), "info");
  EXPECT_EQ(ok.at("direction").as_string(), "outbound");
  EXPECT_EQ(ok.at("error").as_string(), "");
  const json::object failed = json::parse(lines[1]).as_object();
  EXPECT_EQ(failed.at("level").as_string(), "error");
  EXPECT_EQ(failed.at("direction").as_string(), "inbound");
  EXPECT_EQ(failed.at("error").as_string(), "connection refused");
}

TEST(AccessLog, KeepsOneValidLinePerRecordWhatEverTheStringsHold) {
  // Given record fields holding quotes, newlines, control bytes and broken UTF-8 (a peer can put
  // such bytes into an error message or a workload name)
  TempDir dir;
  const auto path = dir.file("access.log");
  ConnectionRecord r = sampleRecord();
  r.error = "bad \"peer\"\n{\\}\x01\x1f tab\t";
  r.src_workload = "caf\xC3\xA9 \xF0\x9F\x90\x9F";             // valid UTF-8 (é, fish) stays as is
  r.dst_workload = std::string("\xFF\xC3(\xED\xA0\x80 z", 8);  // invalid sequences

  // When it is logged
  withLog(path, [&](AccessLog& log) { log.log(r); });

  // Then the file has one line that parses back to the same text, invalid bytes replaced
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 1u);
  const json::object obj = json::parse(lines[0]).as_object();
  EXPECT_EQ(obj.at("error").as_string(), r.error);
  EXPECT_EQ(obj.at("src_workload").as_string(), r.src_workload);
  EXPECT_EQ(obj.at("dst_workload").as_string(),
            "\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD z");
}

TEST(AccessLog, AppendsToAnExistingFile) {
  // Given a log file with a line from an earlier run
  TempDir dir;
  const auto path = dir.file("access.log");
  std::ofstream(path) << "{\"earlier\":true}\n";

  // When a record is logged
  withLog(path, [](AccessLog& log) { log.log(sampleRecord()); });

  // Then the earlier line is kept
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  EXPECT_TRUE(json::parse(lines[1]).as_object().contains("src"));
}

TEST(AccessLog, KeepsLinesWholeWhenManyThreadsLog) {
  // Given several threads logging at once
  TempDir dir;
  const auto path = dir.file("access.log");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  withLog(path, [&](AccessLog& log) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i) {
          ConnectionRecord r = sampleRecord();
          r.bytes_sent = static_cast<uint64_t>(t * kPerThread + i);
          log.log(r);
        }
      });
    }
    for (auto& th : threads) th.join();
  });

  // Then every record is one whole line, none lost or interleaved
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::vector<bool> seen(kThreads * kPerThread);
  for (const std::string& line : lines) {
    seen.at(json::parse(line).as_object().at("bytes_sent").to_number<uint64_t>()) = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kThreads * kPerThread);
}

TEST(AccessLog, FailsToCreateNamingAPathThatCannotBeOpened) {
  // Given a path under a regular file, which no one can create
  TempDir dir;
  std::ofstream(dir.file("plain-file")) << "x";
  const auto path = dir.file("plain-file/access.log");

  auto log = AccessLog::create(path.string());

  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.message(), testing::HasSubstr(path.string()));
}

TEST(AccessLog, CreatesMissingDirectories) {
  TempDir dir;
  const auto path = dir.file("var/log/sluice/access.log");

  withLog(path, [](AccessLog& log) { log.log(sampleRecord()); });

  EXPECT_EQ(readLines(path).size(), 1u);
}

TEST(AccessLog, EmptyPathDisablesLogging) {
  auto log = AccessLog::create("");

  ASSERT_TRUE(log.ok()) << log.message();
  EXPECT_FALSE((*log)->enabled());
  (*log)->log(sampleRecord());  // a no-op, not a crash
}

TEST(AccessLog, DashLogsToStandardOutput) {
  // Given a log on stdout
  testing::internal::CaptureStdout();
  {
    auto log = AccessLog::create("-");
    ASSERT_TRUE(log.ok()) << log.message();
    EXPECT_TRUE((*log)->enabled());
    // When a record is logged and the log is closed
    (*log)->log(sampleRecord());
  }
  // Then the line appeared there
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(json::parse(out).as_object().at("dst").as_string(), "10.0.0.2:8080");
}

}  // namespace
}  // namespace sluice::telemetry
