// Backward of RMSNorm (ops/rms_norm.hpp), per row t of x (T, D), with r = 1 / sqrt(mean_j x_j^2 + eps):
//   y_j = x_j r w_j
//   dw_j = sum_t dy_tj x_tj r_t
//   dx_j = r w_j dy_j - (r^3 / D) x_j sum_k w_k dy_k x_k
// add_rms_norm's backward is this one on the saved sum (residual after the add): the gradient of the sum goes
// to both the residual and x unchanged, so a model accumulates dx into its residual gradient.
// x, dy, dx (T, D); weight, dweight (D). Every output follows `mode` (Overwrite or Accumulate); dx or
// dweight may be empty views (not computed). dx must not alias dy or x.
#pragma once

#include "common.hpp"
#include "host/rms_norm_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/rms_norm_backward.cuh")
#include "cuda/rms_norm_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void rms_norm_backward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 1, Backend> weight,
                       float eps, View<const float, 2, Backend> dy, View<float, 2, Backend> dx,
                       View<float, 1, Backend> dweight, GradientMode mode) {
  const int64_t T = x.size(0), D = x.size(1);
  check_shape(weight, {D}, "rms_norm_backward: weight");
  check_shape(dy, {T, D}, "rms_norm_backward: dy");
  if (present(dx)) check_shape(dx, {T, D}, "rms_norm_backward: dx");
  if (present(dweight)) check_shape(dweight, {D}, "rms_norm_backward: dweight");
  BIMAMBA_CHECK(eps > 0, "rms_norm_backward: eps must be positive, got ", eps);
  detail::rms_norm_backward_impl(ctx, x, weight, eps, dy, dx, dweight, mode);
}

}  // namespace bimamba
