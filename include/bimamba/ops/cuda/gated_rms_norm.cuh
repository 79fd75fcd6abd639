// Cuda gated group-wise RMSNorm (see ops/gated_rms_norm.hpp): one block per (token, group), tokens along the
// grid's x (up to 2^31 - 1), groups along y, about 4 elements per thread (gpu::row_threads). Pass 1 sums g^2
// with g = y * silu(z); pass 2 recomputes g and writes g * rsqrt(mean g^2 + eps) * w. Each element is read and
// written by the same thread, so out may alias y.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void gated_rms_norm_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                                      TensorView<const T, 1, Cuda> weight, int64_t group_size, float eps,
                                      TensorView<T, 2, Cuda> out) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x, j0 = blockIdx.y * group_size;
  float sum = 0.0f;
#pragma unroll 4
  for (int64_t j = j0 + threadIdx.x; j < j0 + group_size; j += blockDim.x) {
    const float g = y(t, j) * silu(z(t, j));
    sum += g * g;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(group_size) + eps);
#pragma unroll 4
  for (int64_t j = j0 + threadIdx.x; j < j0 + group_size; j += blockDim.x)
    out(t, j) = y(t, j) * silu(z(t, j)) * scale * weight(j);
}
}  // namespace gpu

inline void gated_rms_norm_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y, TensorView<const float, 2, Cuda> z,
                                TensorView<const float, 1, Cuda> weight, int64_t groups, float eps,
                                TensorView<float, 2, Cuda> out) {
  if (y.numel() == 0) return;
  BIMAMBA_CHECK(groups < 65536 && y.size(0) < (int64_t(1) << 31), "gated_rms_norm: ", y.size(0), " rows x ", groups,
                " groups exceed the Cuda grid");
  const dim3 grid{unsigned(y.size(0)), unsigned(groups)};
  const int64_t group_size = y.size(1) / groups;
  gpu::gated_rms_norm_kernel<float><<<grid, gpu::row_threads(group_size), 0, ctx.stream()>>>(y, z, weight, group_size,
                                                                                              eps, out);
  gpu::check_launch();
}

}  // namespace bimamba::detail
