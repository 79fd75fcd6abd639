// Cuda residual add (see ops/add.hpp): y[t, j] += x[t, j], one thread per element (grid-stride), any strides.
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void add_kernel(TensorView<const T, 2, Cuda> x, TensorView<T, 2, Cuda> y) {
  const int64_t D = x.size(1), n = x.size(0) * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y(i / D, i % D) += x(i / D, i % D);
}
}  // namespace gpu

inline void add_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<float, 2, Cuda> y) {
  if (x.numel() == 0) return;
  gpu::add_kernel<float><<<gpu::grid_for(x.numel()), gpu::kThreads, 0, ctx.stream()>>>(x, y);
  gpu::check_launch();
}

}  // namespace bimamba::detail
