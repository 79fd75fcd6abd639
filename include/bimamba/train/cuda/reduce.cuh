// Block reductions and read-backs shared by the Cuda training kernels (train/cuda/*.cuh).
//   block_max(v, s)              max over the block in float (fmaxf: a NaN is skipped here, but it still makes
//                                the sums that follow NaN, so a non-finite row still gives a non-finite loss)
//   block_sum(v, s)              (ops/cuda/launch.cuh) sum over the block, here in double
//   copy_back(ctx, host, dev, n) waits for ctx's stream and copies n elements to the host
// blockDim.x is a multiple of 32, at most 1024, in every kernel that uses them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "../../core/cuda_runtime.hpp"
#include "../../ops/cuda/launch_backward.cuh"

namespace bimamba::detail::gpu {

__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

}  // namespace bimamba::detail::gpu

namespace bimamba::detail {

template <class T>
std::vector<T> copy_back(Context<Cuda>& ctx, const T* device, size_t n) {
  std::vector<T> host(n);
  if (n == 0) return host;
  BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()));
  BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return host;
}

}  // namespace bimamba::detail
