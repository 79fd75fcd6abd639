// Backward of the causal depthwise conv1d with fused SiLU (ops/causal_conv1d.hpp), from a zero initial state
// (a training window starts a fresh sequence). Per sequence b and channel c, with
//   a[t] = bias[c] + sum_k w[c, k] x[t - K + 1 + k],   y[t] = silu(a[t])   (x before 0 is 0):
//   da[t]      = dy[t] silu'(a[t])                 (a is recomputed from x, not saved)
//   dx[s]      = sum_k w[c, k] da[s + K - 1 - k]   (terms with s + K - 1 - k >= L vanish)
//   dw[c, k]   = sum_{b, t} da[t] x[t - K + 1 + k]
//   dbias[c]   = sum_{b, t} da[t]
// x, dy, dx (B, L, C) (any strides: the model's x is a column range of in_proj's output); w, dw (C, K);
// dbias (C). dx follows `modes.inputs`, dw and dbias `modes.params` (train/gradient_mode.hpp); any may be an
// empty view. Outputs must not alias inputs.
#pragma once

#include "common.hpp"
#include "host/causal_conv1d_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/causal_conv1d_backward.cuh")
#include "cuda/causal_conv1d_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void causal_conv1d_backward(Context<Backend>& ctx, View<const float, 3, Backend> x, View<const float, 2, Backend> weight,
                            View<const float, 1, Backend> bias, View<const float, 3, Backend> dy,
                            View<float, 3, Backend> dx, View<float, 2, Backend> dweight, View<float, 1, Backend> dbias,
                            GradientModes modes) {
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = weight.size(1);
  check_shape(weight, {C, K}, "causal_conv1d_backward: weight");
  if (present(bias)) check_shape(bias, {C}, "causal_conv1d_backward: bias");
  check_shape(dy, {B, L, C}, "causal_conv1d_backward: dy");
  if (present(dx)) check_shape(dx, {B, L, C}, "causal_conv1d_backward: dx");
  if (present(dweight)) check_shape(dweight, {C, K}, "causal_conv1d_backward: dweight");
  if (present(dbias)) check_shape(dbias, {C}, "causal_conv1d_backward: dbias");
  detail::causal_conv1d_backward_impl(ctx, x, weight, bias, dy, dx, dweight, dbias, modes);
}

}  // namespace bimamba
