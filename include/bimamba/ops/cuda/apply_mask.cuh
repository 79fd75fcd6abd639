// Cuda padding mask (see ops/apply_mask.hpp): x[b, l, c] *= mask[b, l], one thread per element; positions
// with mask 1 are left untouched (as on the host, so real tokens stay bit-identical).
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void apply_mask_kernel(TensorView<const T, 2, Cuda> mask, TensorView<T, 3, Cuda> x) {
  const int64_t L = x.size(1), C = x.size(2), n = x.size(0) * L * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % C, l = (i / C) % L, b = i / (C * L);
    const float m = mask(b, l);
    if (m != 1.0f) x(b, l, c) *= m;
  }
}
}  // namespace gpu

inline void apply_mask_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> mask, TensorView<float, 3, Cuda> x) {
  if (x.numel() == 0) return;
  gpu::apply_mask_kernel<float><<<gpu::grid_for(x.numel()), gpu::kThreads, 0, ctx.stream()>>>(mask, x);
  gpu::check_launch();
}

}  // namespace bimamba::detail
