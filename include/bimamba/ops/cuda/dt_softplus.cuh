// Cuda time-step activation (see ops/dt_softplus.hpp): out[t, h] = clamp(softplus(dt[t, h] + bias[h]), lo, hi),
// one thread per element.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void dt_softplus_kernel(TensorView<const T, 2, Cuda> dt, TensorView<const T, 1, Cuda> bias, float lo,
                                   float hi, TensorView<T, 2, Cuda> out) {
  const int64_t H = dt.size(1), n = dt.size(0) * H;
  const bool has_bias = present(bias);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / H, h = i % H;
    out(t, h) = fminf(hi, fmaxf(lo, softplus(dt(t, h) + (has_bias ? bias(h) : 0.0f))));
  }
}
}  // namespace gpu

inline void dt_softplus_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> dt, TensorView<const float, 1, Cuda> bias,
                             float lo, float hi, TensorView<float, 2, Cuda> out) {
  if (dt.numel() == 0) return;
  gpu::dt_softplus_kernel<float><<<gpu::grid_for(dt.numel()), gpu::kThreads, 0, ctx.stream()>>>(dt, bias, lo, hi, out);
  gpu::check_launch();
}

}  // namespace bimamba::detail
