// Backward of the time-step activation out = clamp(softplus(dt + bias), lo, hi) (ops/dt_softplus.hpp):
//   u = dt + bias;  d out / du = sigmoid(u) where lo <= softplus(u) <= hi, 0 where the clamp is active
//   (u > 20: softplus(u) = u and the derivative is 1, torch's threshold)
//   ddt = dout d out/du;   dbias[h] = sum_t ddt[t, h]
// dt, dout, ddt (T, H) (any strides); bias, dbias (H) or empty views. ddt follows
// `modes.inputs`, dbias `modes.params` (train/gradient_mode.hpp).
#pragma once

#include "common.hpp"
#include "host/dt_softplus_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/dt_softplus_backward.cuh")
#include "cuda/dt_softplus_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void dt_softplus_backward(Context<Backend>& ctx, View<const float, 2, Backend> dt, View<const float, 1, Backend> bias,
                          float lo, float hi, View<const float, 2, Backend> dout, View<float, 2, Backend> ddt,
                          View<float, 1, Backend> dbias, GradientModes modes) {
  const int64_t T = dt.size(0), H = dt.size(1);
  if (present(bias)) check_shape(bias, {H}, "dt_softplus_backward: bias");
  check_shape(dout, {T, H}, "dt_softplus_backward: dout");
  if (present(ddt)) check_shape(ddt, {T, H}, "dt_softplus_backward: ddt");
  if (present(dbias)) check_shape(dbias, {H}, "dt_softplus_backward: dbias");
  BIMAMBA_CHECK(lo <= hi, "dt_softplus_backward: lo ", lo, " > hi ", hi);
  detail::dt_softplus_backward_impl(ctx, dt, bias, lo, hi, dout, ddt, dbias, modes);
}

}  // namespace bimamba
