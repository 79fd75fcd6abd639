// Cuda RMSNorm and fused residual add + RMSNorm (see ops/rms_norm.hpp): one block per row (token), about 4
// elements per thread (gpu::row_threads); the block sums x^2 in float (per-thread partial sums, then a tree),
// then scales. add_rms_norm updates the residual row first; every element is read and written by the same
// thread, so y may alias x in rms_norm. Launched as a programmatic dependent launch (launch.cuh): in the
// decode step the norm starts while out_proj drains and the next in_proj starts while the norm runs.
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
// residual (when non-null, i.e. add_rms_norm): residual += x, then normalize the residual.
template <class T>
__global__ void rms_norm_kernel(TensorView<const T, 2, Cuda> x, TensorView<T, 2, Cuda> residual,
                                TensorView<const T, 1, Cuda> weight, float eps, TensorView<T, 2, Cuda> y) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x, D = x.size(1);
  const bool add = residual.data() != nullptr;
  wait_for_previous_kernel();
  allow_next_kernel();
  float sum = 0.0f;
#pragma unroll 4
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    float v = x(t, j);
    if (add) residual(t, j) = v = residual(t, j) + v;
    sum += v * v;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(D) + eps);
#pragma unroll 4
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) y(t, j) = (add ? residual(t, j) : x(t, j)) * scale * weight(j);
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
