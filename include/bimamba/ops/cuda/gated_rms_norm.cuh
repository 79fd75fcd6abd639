// Cuda gated group-wise RMSNorm (see ops/gated_rms_norm.hpp): one block per (token, group), tokens along the
// grid's x (up to 2^31 - 1), groups along y, S / kNormCols threads rounded up to a warp (at most 1024). Thread x
// owns the group's columns x + k blockDim.x. Pass 1 computes g = y * silu(z) and sums g^2 (in float, the thread's
// columns in order, then block_sum); the g of its first kNormCols columns stay in registers, any further ones
// (S > 8192) are computed again from memory. Pass 2 writes g * rsqrt(mean g^2 + eps) * w. Each element is read and
// written by the same thread, so out may alias y.
// Why: y and z are read from memory once, a thread's loads (w's too) all go out before its sum, and at S = 3072
// (384 threads of 40 registers) four rows are in flight per SM. The previous kernel (about 4 columns a thread, two
// blocks per SM) read y and z again in pass 2 and took 0.22 ms at T = 8192, E = 3072, twice its memory time.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kNormCols = 8;  // columns of a row whose g a thread keeps in registers
inline constexpr int kNormMaxThreads = 1024;

template <class T>
__global__ void __launch_bounds__(kNormMaxThreads, 1)
    gated_rms_norm_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                          TensorView<const T, 1, Cuda> weight, int64_t group_size, float eps,
                          TensorView<T, 2, Cuda> out) {
  __shared__ float scratch[32];
  const unsigned tid = threadIdx.x, step = blockDim.x, S = unsigned(group_size);
  const unsigned held = min(S, kNormCols * step);  // columns [0, held) keep g in registers
  const int64_t t = blockIdx.x, j0 = blockIdx.y * group_size;
  const int64_t ys = y.stride(1), zs = z.stride(1), ws = weight.stride(0), os = out.stride(1);
  const T* yr = y.data() + t * y.stride(0) + j0 * ys;
  const T* zr = z.data() + t * z.stride(0) + j0 * zs;
  const T* wr = weight.data() + j0 * ws;
  T* outr = out.data() + t * out.stride(0) + j0 * os;
  float g[kNormCols], wv[kNormCols], sum = 0.0f;  // w too: loaded before any store (out may alias y)
#pragma unroll
  for (unsigned k = 0; k < kNormCols; ++k) {
    const unsigned j = tid + k * step;
    if (j >= held) continue;
    g[k] = yr[j * ys] * silu(zr[j * zs]);
    wv[k] = wr[j * ws];
    sum += g[k] * g[k];
  }
  for (unsigned j = held + tid; j < S; j += step) {
    const float v = yr[j * ys] * silu(zr[j * zs]);
    sum += v * v;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(S) + eps);
#pragma unroll
  for (unsigned k = 0; k < kNormCols; ++k) {
    const unsigned j = tid + k * step;
    if (j < held) outr[j * os] = g[k] * scale * wv[k];
  }
  for (unsigned j = held + tid; j < S; j += step) outr[j * os] = yr[j * ys] * silu(zr[j * zs]) * scale * wr[j * ws];
}
}  // namespace gpu

inline void gated_rms_norm_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y, TensorView<const float, 2, Cuda> z,
                                TensorView<const float, 1, Cuda> weight, int64_t groups, float eps,
                                TensorView<float, 2, Cuda> out) {
  if (y.numel() == 0) return;
  BIMAMBA_CHECK(groups < 65536 && y.size(0) < (int64_t(1) << 31), "gated_rms_norm: ", y.size(0), " rows x ", groups,
                " groups exceed the Cuda grid");
  BIMAMBA_CHECK(y.size(1) / groups < (int64_t(1) << 31), "gated_rms_norm (Cuda): groups of ", y.size(1) / groups,
                " channels (at most 2^31 - 1)");
  const dim3 grid{unsigned(y.size(0)), unsigned(groups)};
  const int64_t group_size = y.size(1) / groups;
  const int64_t per_warp = 32 * gpu::kNormCols;  // kNormCols columns a thread, at most kNormMaxThreads threads
  const int threads = int(std::min<int64_t>(gpu::kNormMaxThreads, (group_size + per_warp - 1) / per_warp * 32));
  gpu::gated_rms_norm_kernel<float><<<grid, threads, 0, ctx.stream()>>>(y, z, weight, group_size, eps, out);
  gpu::check_launch();
}

}  // namespace bimamba::detail
