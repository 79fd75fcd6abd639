// Cuda backward of y = -exp(x) (see ops/neg_exp_backward.hpp): dx = dy y, grid-stride element-wise.
#pragma once

#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void neg_exp_backward_kernel(TensorView<const T, 1, Cuda> y, TensorView<const T, 1, Cuda> dy,
                                        TensorView<T, 1, Cuda> dx, GradientMode mode) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < y.size(0); i += int64_t(gridDim.x) * blockDim.x)
    put_grad(dx(i), double(dy(i)) * y(i), mode);
}
}  // namespace gpu

inline void neg_exp_backward_impl(Context<Cuda>& ctx, TensorView<const float, 1, Cuda> y,
                                  TensorView<const float, 1, Cuda> dy, TensorView<float, 1, Cuda> dx, GradientMode mode) {
  if (y.size(0) == 0) return;
  gpu::neg_exp_backward_kernel<float><<<gpu::grid_for(y.size(0)), gpu::kThreads, 0, ctx.stream()>>>(y, dy, dx, mode);
  gpu::check_launch();
}

}  // namespace bimamba::detail
