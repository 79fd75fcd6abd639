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

// residual (when non-null, i.e. add_rms_norm): residual += x, then normalize the residual. A thread's first
// kRowRegs elements are columns tid + u blockDim.x (V = 1) or, where every row lies in aligned float4s (V = 4),
// the run 4 tid .. 4 tid + 3, loaded and stored as one float4 (session 21).
template <class T, int V>
__global__ void __launch_bounds__(1024)
    rms_norm_kernel(TensorView<const T, 2, Cuda> x, TensorView<T, 2, Cuda> residual,
                    TensorView<const T, 1, Cuda> weight, float eps, TensorView<T, 2, Cuda> y) {
  static_assert(V == 1 || V == kRowRegs, "a float4 run is a thread's kRowRegs elements");
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x, D = x.size(1), step = blockDim.x;
  const bool add = residual.data() != nullptr;
  auto col = [&](int u) { return V == 1 ? threadIdx.x + u * step : V * int64_t(threadIdx.x) + u; };
  auto quad = [](const T& first) { return *reinterpret_cast<const float4*>(&first); };
  wait_for_previous_kernel();
  allow_next_kernel();
  float v[kRowRegs] = {}, r[kRowRegs] = {}, w[kRowRegs] = {};
  if constexpr (V == 4) {
    if (col(0) < D) {
      const float4 a = quad(x(t, col(0))), b = add ? quad(residual(t, col(0))) : float4{}, c = quad(weight(col(0)));
      v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
      r[0] = b.x, r[1] = b.y, r[2] = b.z, r[3] = b.w;
      w[0] = c.x, w[1] = c.y, w[2] = c.z, w[3] = c.w;
    }
  } else {
#pragma unroll
    for (int u = 0; u < kRowRegs; ++u) {
      const int64_t j = col(u);
      v[u] = j < D ? float(x(t, j)) : 0.0f;
      r[u] = add && j < D ? float(residual(t, j)) : 0.0f;
      w[u] = j < D ? float(weight(j)) : 0.0f;
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (int u = 0; u < kRowRegs; ++u) {
    if (col(u) >= D) continue;
    if (add) v[u] += r[u];
    if (add && V == 1) residual(t, col(u)) = v[u];
    sum += v[u] * v[u];
  }
  if (V == 4 && add && col(0) < D)
    *reinterpret_cast<float4*>(&residual(t, col(0))) = make_float4(v[0], v[1], v[2], v[3]);
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step) {
    float e = x(t, j);
    if (add) residual(t, j) = e = residual(t, j) + e;
    sum += e * e;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(D) + eps);
  if constexpr (V == 4) {
    if (col(0) < D)
      *reinterpret_cast<float4*>(&y(t, col(0))) =
          make_float4(v[0] * scale * w[0], v[1] * scale * w[1], v[2] * scale * w[2], v[3] * scale * w[3]);
  } else {
#pragma unroll
    for (int u = 0; u < kRowRegs; ++u)
      if (col(u) < D) y(t, col(u)) = v[u] * scale * w[u];
  }
  for (int64_t j = threadIdx.x + kRowRegs * step; j < D; j += step)
    y(t, j) = (add ? residual(t, j) : x(t, j)) * scale * weight(j);
}

// The kernel for rows of D columns: float4 runs where D % 4 == 0 and every row and the weight allow.
inline auto rms_norm_kernel_for(TensorView<const float, 2, Cuda> x, TensorView<float, 2, Cuda> residual,
                                TensorView<const float, 1, Cuda> weight, TensorView<float, 2, Cuda> y) {
  const bool quads = x.size(1) % 4 == 0 && float4_rows(x) && (residual.data() == nullptr || float4_rows(residual)) &&
                     float4_rows(weight) && float4_rows(y);
  return quads ? rms_norm_kernel<float, 4> : rms_norm_kernel<float, 1>;
}
}  // namespace gpu

inline void rms_norm_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 1, Cuda> weight,
                          float eps, TensorView<float, 2, Cuda> y) {
  if (x.size(0) == 0) return;
  gpu::launch_dependent(ctx.stream(), gpu::compute_major(ctx.device()),
                        gpu::rms_norm_kernel_for(x, TensorView<float, 2, Cuda>{}, weight, y), dim3(unsigned(x.size(0))),
                        dim3(gpu::row_threads(x.size(1))), 0, x, TensorView<float, 2, Cuda>{}, weight, eps, y);
}

inline void add_rms_norm_impl(Context<Cuda>& ctx, TensorView<float, 2, Cuda> residual, TensorView<const float, 2, Cuda> x,
                              TensorView<const float, 1, Cuda> weight, float eps, TensorView<float, 2, Cuda> y) {
  if (x.size(0) == 0) return;
  gpu::launch_dependent(ctx.stream(), gpu::compute_major(ctx.device()),
                        gpu::rms_norm_kernel_for(x, residual, weight, y), dim3(unsigned(x.size(0))),
                        dim3(gpu::row_threads(x.size(1))), 0, x, residual, weight, eps, y);
}

}  // namespace bimamba::detail
