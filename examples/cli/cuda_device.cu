// The CLI's GPU checks (device.hpp): whether a CUDA device can be used, and which one a command runs on.
#include <bimamba/cuda.hpp>

#include <cstdio>
#include <string>

#include "device.hpp"

namespace bimamba::cli {

void require_cuda_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    (void)cudaGetLastError();  // clear the error for later calls
    BIMAMBA_THROW(InvalidArgument, "--device cuda: no usable CUDA device (",
                  status != cudaSuccess ? cudaGetErrorString(status) : "none found", ")");
  }
}

void announce_gpu(const std::string& what) {
  int device = 0;
  BIMAMBA_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  BIMAMBA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::fprintf(stderr, "%s on GPU %d, %s\n", what.c_str(), device, prop.name);
}

}  // namespace bimamba::cli
