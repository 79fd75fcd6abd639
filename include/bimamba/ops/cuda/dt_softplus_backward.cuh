// Cuda backward of out = clamp(softplus(dt + bias), lo, hi) (see ops/dt_softplus_backward.hpp):
//   kernel 1, grid-stride over (t, h): ddt = dout * d, d = 0 where clamped, 1 above 20, else sigmoid(u)
//   then dbias[h] = sum_t ddt[t, h] (recomputed, not read back) in double by column_reduce
//             (ops/cuda/column_reduce.cuh).
#pragma once

#include "column_reduce.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__device__ inline double dt_softplus_grad(const TensorView<const T, 2, Cuda>& dt, const TensorView<const T, 1, Cuda>& bias,
                                          float lo, float hi, const TensorView<const T, 2, Cuda>& dout, int64_t t,
                                          int64_t h) {
  const float u = dt(t, h) + (present(bias) ? bias(h) : 0.0f);
  const float sp = softplus(u);
  const double d = (sp < lo || sp > hi) ? 0.0 : u > 20.0f ? 1.0 : dsigmoid(u);
  return double(dout(t, h)) * d;
}

template <class T>
__global__ void dt_softplus_backward_kernel(TensorView<const T, 2, Cuda> dt, TensorView<const T, 1, Cuda> bias, float lo,
                                            float hi, TensorView<const T, 2, Cuda> dout, TensorView<T, 2, Cuda> ddt,
                                            GradientMode mode) {
  const int64_t H = dt.size(1), n = dt.size(0) * H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    put_grad(ddt(i / H, i % H), dt_softplus_grad(dt, bias, lo, hi, dout, i / H, i % H), mode);
}

template <class T>
struct DtBiasTerm {
  TensorView<const T, 2, Cuda> dt;
  TensorView<const T, 1, Cuda> bias;
  float lo, hi;
  TensorView<const T, 2, Cuda> dout;
  __device__ ColumnTerms<1> operator()(int64_t t, int64_t h) const {
    return {{dt_softplus_grad(dt, bias, lo, hi, dout, t, h)}};
  }
};
}  // namespace gpu

inline void dt_softplus_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> dt,
                                      TensorView<const float, 1, Cuda> bias, float lo, float hi,
                                      TensorView<const float, 2, Cuda> dout, TensorView<float, 2, Cuda> ddt,
                                      TensorView<float, 1, Cuda> dbias, GradientModes modes) {
  const int64_t H = dt.size(1);
  if (present(ddt) && dt.numel() > 0) {
    gpu::dt_softplus_backward_kernel<float><<<gpu::grid_for(dt.numel()), gpu::kThreads, 0, ctx.stream()>>>(
        dt, bias, lo, hi, dout, ddt, modes.inputs);
    gpu::check_launch();
  }
  if (present(dbias) && H > 0) {
    column_reduce<1>(ctx, dt.size(0), H, gpu::DtBiasTerm<float>{dt, bias, lo, hi, dout},
                     gpu::PutColumnGrad<float>{dbias, modes.params});
  }
}

}  // namespace bimamba::detail
