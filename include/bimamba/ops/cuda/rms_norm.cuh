// Cuda RMSNorm and fused residual add + RMSNorm (see ops/rms_norm.hpp): one block per row (token), about 4
// elements per thread (gpu::row_threads); the block sums x^2 in float (per-thread partial sums, then a tree),
// then scales. A thread keeps its first kRowRegs elements (and their weights) in registers, loaded before its
// first store: a loop that stores (the residual, y) waits a memory round trip per element, since the compiler
// cannot move a load above a store that may alias it. Rows wider than kRowRegs x 1024 read the rest in a loop.
// add_rms_norm updates the residual row first; every element is read and written by the same thread, so y may
// alias x in rms_norm. Launched as a programmatic dependent launch (launch.cuh): in the decode step the norm
// starts while out_proj drains and the next in_proj starts while the norm runs.
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kRowRegs = 4;  // elements of a row a thread keeps in registers (row_threads: ~4 a thread)

// residual (when non-null, i.e. add_rms_norm): residual += x, then normalize the residual.
template <class T>
__global__ void __launch_bounds__(1024)
    rms_norm_kernel(TensorView<const T, 2, Cuda> x, TensorView<T, 2, Cuda> residual,
                    TensorView<const T, 1, Cuda> weight, float eps, TensorView<T, 2, Cuda> y) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x, D = x.size(1), step = blockDim.x;
  const bool add = residual.data() != nullptr;
  wait_for_previous_kernel();
  allow_next_kernel();
  float v[kRowRegs], r[kRowRegs], w[kRowRegs];
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    const int64_t j = threadIdx.x + u * step;
    v[u] = j < D ? float(x(t, j)) : 0.0f;
    r[u] = add && j < D ? float(residual(t, j)) : 0.0f;
    w[u] = j < D ? float(weight(j)) : 0.0f;
  }
  float sum = 0.0f;
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    const int64_t j = threadIdx.x + u * step;
    if (j >= D) continue;
    if (add) residual(t, j) = v[u] = r[u] + v[u];
    sum += v[u] * v[u];
  }
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step) {
    float e = x(t, j);
    if (add) residual(t, j) = e = residual(t, j) + e;
    sum += e * e;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(D) + eps);
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    const int64_t j = threadIdx.x + u * step;
    if (j < D) y(t, j) = v[u] * scale * w[u];
  }
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step)
    y(t, j) = (add ? residual(t, j) : x(t, j)) * scale * weight(j);
}
}  // namespace gpu

inline void rms_norm_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 1, Cuda> weight,
                          float eps, TensorView<float, 2, Cuda> y) {
  if (x.size(0) == 0) return;
  gpu::launch_dependent(ctx.stream(), gpu::compute_major(ctx.device()), gpu::rms_norm_kernel<float>,
                        dim3(unsigned(x.size(0))), dim3(gpu::row_threads(x.size(1))), 0, x,
                        TensorView<float, 2, Cuda>{}, weight, eps, y);
}

inline void add_rms_norm_impl(Context<Cuda>& ctx, TensorView<float, 2, Cuda> residual, TensorView<const float, 2, Cuda> x,
                              TensorView<const float, 1, Cuda> weight, float eps, TensorView<float, 2, Cuda> y) {
  if (x.size(0) == 0) return;
  gpu::launch_dependent(ctx.stream(), gpu::compute_major(ctx.device()), gpu::rms_norm_kernel<float>,
                        dim3(unsigned(x.size(0))), dim3(gpu::row_threads(x.size(1))), 0, x, residual, weight, eps, y);
}

}  // namespace bimamba::detail
