// Temporary file names for the train tests: unique per process and test, so that several builds running
// the suite at the same time on one machine never share a file.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace bimamba::test {

// <temp dir>/bimamba_<pid>_<test name>_<name>
inline std::string temp_path(const std::string& name) {
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  return (std::filesystem::path(::testing::TempDir()) /
          ("bimamba_" + std::to_string(::getpid()) + "_" + test + "_" + name))
      .string();
}

}  // namespace bimamba::test
