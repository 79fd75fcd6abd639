// Device-test helpers (CUDA translation units only): random host tensors, the relative L2 distance of a device
// tensor from its host counterpart, and a fixture with a host and a device context that skips without a GPU.
#pragma once

#include <bimamba/cuda.hpp>
#include <memory>

#include "test_support.hpp"

namespace bimamba::test {

// A host tensor of `shape` with values uniform in [lo, hi) from `seed`.
template <int Rank>
Tensor<float, Rank, Host> rand_host(const Extents<Rank>& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return tensor_from<float, Rank>(random_floats(size_t(product<Rank>(shape)), seed, lo, hi), shape);
}

// ||device - host||_2 / ||host||_2.
template <class T, int Rank>
double rel(const Tensor<T, Rank, Cuda>& device, const Tensor<T, Rank, Host>& host) {
  return relative_l2(to_vector(device), to_vector(host));
}

// host_ and dev_ contexts; every test skips on a machine without a CUDA device.
class DeviceVsHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
    dev_ = std::make_unique<Context<Cuda>>();
  }
  Context<Host> host_;
  std::unique_ptr<Context<Cuda>> dev_;
};

}  // namespace bimamba::test
