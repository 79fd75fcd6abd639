// Cuda kernels over flat float buffers for train/grad_utils.hpp and train/adamw.hpp (host version
// train/host/grad_utils.hpp): sum of squares, scaling, the first non-finite element.
//
// The reductions use the host's fixed blocks of kReduceBlock elements: one CUDA block per reduce block (a
// fixed thread mapping and tree, so the result is deterministic), the per-block results copied back and
// combined on the host in block order (sum) or as the first block with a hit (search). Both synchronize the
// stream. The sum differs from the host's only by double rounding.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/workspace.hpp"
#include "../host/grad_utils.hpp"
#include "reduce.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void sum_squares_blocks_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double scratch[32];
  const int64_t begin = blockIdx.x * kReduceBlock, end = begin + kReduceBlock < n ? begin + kReduceBlock : n;
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += double(x[i]) * double(x[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T>
__global__ void scale_kernel(T* x, int64_t n, float factor) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= factor;
}

// first[b] = the smallest index of a NaN / Inf in reduce block b, or -1.
template <class T>
__global__ void first_non_finite_blocks_kernel(const T* x, int64_t n, int64_t* first) {
  __shared__ int64_t found;
  if (threadIdx.x == 0) found = INT64_MAX;
  __syncthreads();
  const int64_t begin = blockIdx.x * kReduceBlock, end = begin + kReduceBlock < n ? begin + kReduceBlock : n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    if (!isfinite(x[i])) {
      atomicMin(reinterpret_cast<unsigned long long*>(&found), static_cast<unsigned long long>(i));
      break;  // later elements of this thread have larger indices
    }
  __syncthreads();
  if (threadIdx.x == 0) first[blockIdx.x] = found == INT64_MAX ? -1 : found;
}
}  // namespace gpu

inline double sum_squares_impl(Context<Cuda>& ctx, TensorView<const float, 1, Cuda> x) {
  const int64_t n = x.size(0), blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks == 0) return 0.0;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* partial = ctx.workspace().take<double>(size_t(blocks));
  gpu::sum_squares_blocks_kernel<float><<<unsigned(blocks), gpu::kThreads, 0, ctx.stream()>>>(x.data(), n, partial);
  gpu::check_launch();
  double total = 0;
  for (double p : copy_back(ctx, partial, size_t(blocks))) total += p;
  return total;
}

inline void scale_impl(Context<Cuda>& ctx, TensorView<float, 1, Cuda> x, float factor) {
  if (x.size(0) == 0) return;
  gpu::scale_kernel<float><<<gpu::grid_for(x.size(0)), gpu::kThreads, 0, ctx.stream()>>>(x.data(), x.size(0), factor);
  gpu::check_launch();
}

inline int64_t first_non_finite_impl(Context<Cuda>& ctx, TensorView<const float, 1, Cuda> x) {
  const int64_t n = x.size(0), blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks == 0) return -1;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  int64_t* first = ctx.workspace().take<int64_t>(size_t(blocks));
  gpu::first_non_finite_blocks_kernel<float><<<unsigned(blocks), gpu::kThreads, 0, ctx.stream()>>>(x.data(), n, first);
  gpu::check_launch();
  for (int64_t f : copy_back(ctx, first, size_t(blocks)))
    if (f >= 0) return f;
  return -1;
}

}  // namespace bimamba::detail
