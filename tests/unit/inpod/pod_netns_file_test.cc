// The pod netns file (core/inpod/pod_netns_file.h): what the lab writes and the agent reads to
// find each pod's network namespace.
#include "core/inpod/pod_netns_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace sluice::inpod {
namespace {

using ::testing::HasSubstr;

class PodNetnsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-podnetns-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ / "pods.json") << text; }
  std::filesystem::path dir_;
};

TEST_F(PodNetnsFileTest, WhatTheLabWritesTheAgentReads) {
  const PodNetnsPaths pods{{"shop/client", "/run/netns/sluice-1-shop-client"},
                           {"shop/server", "/run/netns/sluice-1-shop-server"}};
  ASSERT_TRUE(writePodNetnsFile(dir_ / "pods.json", pods));
  auto read = readPodNetnsFile(dir_ / "pods.json");
  ASSERT_TRUE(read) << read.message();
  EXPECT_EQ(*read, pods);
  // Written by rename: no temporary file is left beside it
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);
}

TEST_F(PodNetnsFileTest, AMissingOrMalformedFileIsAnErrorNamingIt) {
  auto missing = readPodNetnsFile(dir_ / "pods.json");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.message(), HasSubstr("pods.json"));
  for (const char* bad : {"", "{", "[]", R"({"pods": []})", R"({"pods": {"shop/a": 7}})"}) {
    write(bad);
    auto read = readPodNetnsFile(dir_ / "pods.json");
    ASSERT_FALSE(read) << bad;
    EXPECT_THAT(read.message(), HasSubstr("pods.json")) << bad;
  }
}

}  // namespace
}  // namespace sluice::inpod
