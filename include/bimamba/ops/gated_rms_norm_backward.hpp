// Backward of the gated group-wise RMSNorm (ops/gated_rms_norm.hpp). Per row and group of S = E / groups
// channels, with g = y silu(z) and r = 1 / sqrt(mean_group g^2 + eps):
//   out_j = g_j r w_j
//   dw_j  = sum_t dout_j g_j r
//   dg_j  = r w_j dout_j - (r^3 / S) g_j sum_{k in group} w_k dout_k g_k
//   dy_j  = dg_j silu(z_j);   dz_j = dg_j y_j silu'(z_j),  silu'(z) = s (1 + z (1 - s)), s = sigmoid(z)
// y, z, dout, dy, dz (T, E); weight, dweight (E). dy and dz follow `modes.inputs`, dweight `modes.params`
// (train/gradient_mode.hpp); any may be an empty view.
// Outputs must not alias inputs.
#pragma once

#include "common.hpp"
#include "host/gated_rms_norm_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/gated_rms_norm_backward.cuh")
#include "cuda/gated_rms_norm_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void gated_rms_norm_backward(Context<Backend>& ctx, View<const float, 2, Backend> y, View<const float, 2, Backend> z,
                             View<const float, 1, Backend> weight, int64_t groups, float eps,
                             View<const float, 2, Backend> dout, View<float, 2, Backend> dy, View<float, 2, Backend> dz,
                             View<float, 1, Backend> dweight, GradientModes modes) {
  const int64_t T = y.size(0), E = y.size(1);
  check_shape(z, {T, E}, "gated_rms_norm_backward: z");
  check_shape(weight, {E}, "gated_rms_norm_backward: weight");
  check_shape(dout, {T, E}, "gated_rms_norm_backward: dout");
  if (present(dy)) check_shape(dy, {T, E}, "gated_rms_norm_backward: dy");
  if (present(dz)) check_shape(dz, {T, E}, "gated_rms_norm_backward: dz");
  if (present(dweight)) check_shape(dweight, {E}, "gated_rms_norm_backward: dweight");
  BIMAMBA_CHECK(groups > 0 && E % groups == 0, "gated_rms_norm_backward: ", groups, " groups do not divide E = ", E);
  BIMAMBA_CHECK(eps > 0, "gated_rms_norm_backward: eps must be positive, got ", eps);
  detail::gated_rms_norm_backward_impl(ctx, y, z, weight, groups, eps, dout, dy, dz, dweight, modes);
}

}  // namespace bimamba
