// Tests that need root (network namespaces, BPF) say why when they cannot run; under CI
// (CI=true, where we run as root) not being able to run is a failure, never a silent skip.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#define SLUICE_REQUIRE_ROOT(why)                                                     \
  do {                                                                               \
    if (::geteuid() != 0) {                                                          \
      const char* ci = std::getenv("CI");                                            \
      if (ci != nullptr && std::string(ci) == "true") {                              \
        GTEST_FAIL() << "needs root under CI: " << (why);                            \
      }                                                                              \
      GTEST_SKIP() << "needs root: " << (why);                                       \
    }                                                                                \
  } while (false)
