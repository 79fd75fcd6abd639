// Shared test support: the backends a typed test runs on, a fixture that skips device tests when no GPU is
// present, the test-data folder, and comparison helpers with explicit tolerances.
//
// A typed_*.cpp test is compiled twice: as C++ (Backends = Host) and, where nvcc exists, as CUDA
// (Backends = Cuda) into a separate executable labelled `cuda`.
#pragma once

#include <gtest/gtest.h>

#include <bimamba/core.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__CUDACC__)
#include <bimamba/cuda.hpp>
#endif

namespace bimamba::test {

#if defined(__CUDACC__)
using Backends = ::testing::Types<Cuda>;
#else
using Backends = ::testing::Types<Host>;
#endif

// Typed fixture: a context for the backend; skips when the backend is Cuda and there is no device.
template <class Backend>
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(__CUDACC__)
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
#endif
    ctx_ = std::make_unique<Context<Backend>>();
  }
  Context<Backend>& ctx() { return *ctx_; }

 private:
  std::unique_ptr<Context<Backend>> ctx_;
};

// The checkout's root: $BIMAMBA_SOURCE_DIR when set (ctest sets it for every test), else the nearest folder
// above the test executable, then above the working directory, that holds tests/data. Found at run time, not
// compiled in, so that the objects of clones at different paths are the same and share the compiler cache.
inline const std::string& source_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("BIMAMBA_SOURCE_DIR"); env && *env) return std::string(env);
    std::error_code ec;
    for (fs::path start : {fs::canonical("/proc/self/exe", ec).parent_path(), fs::current_path(ec)}) {
      for (fs::path p = start; !p.empty(); p = p.parent_path()) {
        if (fs::is_directory(p / "tests" / "data", ec) && fs::is_directory(p / "include" / "bimamba", ec)) return p.string();
        if (p == p.root_path()) break;
      }
    }
    throw std::runtime_error("test support: cannot find the bimamba checkout (tests/data); set BIMAMBA_SOURCE_DIR");
  }();
  return dir;
}

// The built `bimamba` CLI: $BIMAMBA_CLI_BINARY when set, else bimamba or bin/bimamba in the nearest folder
// above the test executable (the build tree puts it in <build>/bin).
inline const std::string& cli_binary() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("BIMAMBA_CLI_BINARY"); env && *env) return std::string(env);
    std::error_code ec;
    for (fs::path p = fs::canonical("/proc/self/exe", ec).parent_path(); !p.empty(); p = p.parent_path()) {
      for (const fs::path& candidate : {p / "bimamba", p / "bin" / "bimamba"})
        if (fs::is_regular_file(candidate, ec)) return candidate.string();
      if (p == p.root_path()) break;
    }
    throw std::runtime_error("test support: cannot find the built bimamba CLI; set BIMAMBA_CLI_BINARY");
  }();
  return path;
}

// Absolute path of a file under tests/data.
inline std::string data_path(const std::string& relative) { return source_dir() + "/tests/data/" + relative; }

// ||a - b||_2 / ||b||_2 (0 when both are zero).
template <class A, class B>
double relative_l2(const A& a, const B& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace bimamba::test
