// Backward of the dense linear layer y = x W^T + bias (ops/linear.hpp):
//   dx = dy W            (T, in)
//   dW = dy^T x          (out, in), summed over tokens
//   dbias = sum_t dy_t   (out)
// x, dx (T, in); W, dW (out, in); dy (T, out); bias gradient dbias (out). Every output follows `mode`; any may
// be an empty view (not computed). Outputs must not alias inputs.
#pragma once

#include "common.hpp"
#include "host/linear_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/linear_backward.cuh")
#include "cuda/linear_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void linear_backward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> W,
                     View<const float, 2, Backend> dy, View<float, 2, Backend> dx, View<float, 2, Backend> dW,
                     View<float, 1, Backend> dbias, GradientMode mode) {
  const int64_t T = x.size(0), in = x.size(1), out = W.size(0);
  check_shape(W, {out, in}, "linear_backward: W");
  check_shape(dy, {T, out}, "linear_backward: dy");
  if (present(dx)) check_shape(dx, {T, in}, "linear_backward: dx");
  if (present(dW)) check_shape(dW, {out, in}, "linear_backward: dW");
  if (present(dbias)) check_shape(dbias, {out}, "linear_backward: dbias");
  detail::linear_backward_impl(ctx, x, W, dy, dx, dW, dbias, mode);
}

}  // namespace bimamba
