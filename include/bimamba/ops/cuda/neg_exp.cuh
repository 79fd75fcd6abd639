// Cuda y = -exp(x) (see ops/neg_exp.hpp), one thread per element; y may alias x (each element is read by the
// thread that writes it).
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void neg_exp_kernel(TensorView<const T, 1, Cuda> x, TensorView<T, 1, Cuda> y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < x.size(0); i += int64_t(gridDim.x) * blockDim.x)
    y(i) = -expf(x(i));
}
}  // namespace gpu

inline void neg_exp_impl(Context<Cuda>& ctx, TensorView<const float, 1, Cuda> x, TensorView<float, 1, Cuda> y) {
  if (x.numel() == 0) return;
  gpu::neg_exp_kernel<float><<<gpu::grid_for(x.numel()), gpu::kThreads, 0, ctx.stream()>>>(x, y);
  gpu::check_launch();
}

}  // namespace bimamba::detail
