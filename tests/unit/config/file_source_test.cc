// FileSource: first load, reload on change, last good snapshot kept through a bad edit.
#include "core/config/file_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr std::string_view kNamespace = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
)";

constexpr std::string_view kPod = R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
status: {phase: Running, podIP: 10.0.0.5}
)";

constexpr std::string_view kBadPod = R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
status: {phase: Running, podIP: 10.0.0.500}
)";

class FileSourceTest : public ::testing::Test {
 protected:
  FileSource::Options options() {
    FileSource::Options options;
    options.debounce = 10ms;
    options.on_rejected = [this](const LoadResult& result) { rejections_.push_back(result); };
    return options;
  }

  std::unique_ptr<FileSource> start() {
    auto source = FileSource::create(
        io_.get_executor(), dir_.path(),
        [this](std::shared_ptr<const Snapshot> snapshot) { updates_.push_back(snapshot); },
        options());
    if (!source) {
      ADD_FAILURE() << source.message();
      return nullptr;
    }
    return std::move(source.value());
  }

  // Runs the executor until `done` holds, failing after a generous deadline. No sleeping:
  // each step waits for the next event.
  template <class Done>
  bool runUntil(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(deadline - now);
    }
    return true;
  }

  boost::asio::io_context io_;
  TempDir dir_;
  std::vector<std::shared_ptr<const Snapshot>> updates_;
  std::vector<LoadResult> rejections_;
};

TEST_F(FileSourceTest, LoadsTheDirectoryOnCreate) {
  dir_.write("ns.yaml", kNamespace);
  dir_.write("pod.yaml", kPod);
  auto source = start();
  ASSERT_NE(source, nullptr);
  ASSERT_NE(source->current(), nullptr);
  EXPECT_NE(source->current()->pod("shop", "web"), nullptr);
  EXPECT_TRUE(updates_.empty());
}

TEST_F(FileSourceTest, RefusesToStartOnARejectedDocument) {
  dir_.write("pod.yaml", kBadPod);
  auto source = FileSource::create(io_.get_executor(), dir_.path(), nullptr, options());
  ASSERT_FALSE(source);
  EXPECT_THAT(source.message(), HasSubstr("pod.yaml:4 Pod shop/web: status.podIP"));
}

TEST_F(FileSourceTest, RefusesToStartWithoutTheDirectory) {
  auto source = FileSource::create(io_.get_executor(), dir_.path() / "missing", nullptr, options());
  ASSERT_FALSE(source);
  EXPECT_THAT(source.message(), HasSubstr("does not exist"));
}

TEST_F(FileSourceTest, ReloadsWhenAFileIsAdded) {
  dir_.write("ns.yaml", kNamespace);
  auto source = start();
  ASSERT_NE(source, nullptr);
  uint64_t first_version = source->current()->version();

  dir_.write("pod.yaml", kPod);

  ASSERT_TRUE(runUntil([&] { return !updates_.empty(); })) << "no reload within the deadline";
  EXPECT_NE(updates_.back()->pod("shop", "web"), nullptr);
  EXPECT_GT(updates_.back()->version(), first_version);
  EXPECT_EQ(source->current(), updates_.back());
}

TEST_F(FileSourceTest, ReloadsWhenAFileIsRemoved) {
  dir_.write("ns.yaml", kNamespace);
  auto pod = dir_.write("pod.yaml", kPod);
  auto source = start();
  ASSERT_NE(source, nullptr);

  std::filesystem::remove(pod);

  ASSERT_TRUE(runUntil([&] {
    return !updates_.empty() && updates_.back()->pod("shop", "web") == nullptr;
  })) << "no reload without the pod within the deadline";
  EXPECT_NE(source->current()->namespaceByName("shop"), nullptr);
}

TEST_F(FileSourceTest, KeepsLastGoodSnapshotAfterABadEditAndRecoversWhenFixed) {
  dir_.write("ns.yaml", kNamespace);
  dir_.write("pod.yaml", kPod);
  auto source = start();
  ASSERT_NE(source, nullptr);
  auto good = source->current();

  // When the pod file is broken, the reload is rejected and the good snapshot stays.
  dir_.write("pod.yaml", kBadPod);
  ASSERT_TRUE(runUntil([&] { return !rejections_.empty(); })) << "no reload within the deadline";
  EXPECT_TRUE(updates_.empty());
  EXPECT_EQ(source->current(), good);
  EXPECT_EQ(rejections_.back().count(DocumentReport::Status::kRejected), 1u);

  // When it is fixed, the next reload is taken.
  std::string fixed(kPod);
  fixed.replace(fixed.find("10.0.0.5"), 8, "10.0.0.6");
  dir_.write("pod.yaml", fixed);
  ASSERT_TRUE(runUntil([&] { return !updates_.empty(); })) << "no reload within the deadline";
  EXPECT_EQ(source->current(), updates_.back());
  const Pod* pod = source->current()->pod("shop", "web");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->ips.front(), boost::asio::ip::make_address("10.0.0.6"));
}

TEST_F(FileSourceTest, StopsCleanlyWithAReloadPending) {
  dir_.write("ns.yaml", kNamespace);
  auto source = start();
  ASSERT_NE(source, nullptr);
  dir_.write("pod.yaml", kPod);
  io_.poll();  // the change may be seen, the debounce has not run out
  source.reset();
  // With the watch and the timer cancelled, the executor runs out of work instead of waiting.
  io_.run_for(10s);
  EXPECT_TRUE(io_.stopped());
  EXPECT_TRUE(updates_.empty());
}

}  // namespace
}  // namespace sluice::config
