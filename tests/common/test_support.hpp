// Shared test support: the backends a typed test runs on, a fixture that skips device tests when no GPU is
// present, the test-data folder, and comparison helpers with explicit tolerances.
//
// A typed_*.cpp test is compiled twice: as C++ (Backends = Host) and, where nvcc exists, as CUDA
// (Backends = Cuda) into a separate executable labelled `cuda`.
#pragma once

#include <gtest/gtest.h>

#include <bimamba/core.hpp>
#include <cmath>
#include <random>
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

// Absolute path of a file under tests/data.
inline std::string data_path(const std::string& relative) { return std::string(BIMAMBA_TEST_DATA_DIR) + "/" + relative; }

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
