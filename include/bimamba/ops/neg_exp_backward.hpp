// Backward of y = -exp(x) (ops/neg_exp.hpp, A = -exp(A_log)): dx = dy dy/dx = dy (-exp(x)) = dy y.
// y (the forward's output), dy, dx (n). dx follows `mode`.
#pragma once

#include "common.hpp"
#include "host/neg_exp_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/neg_exp_backward.cuh")
#include "cuda/neg_exp_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void neg_exp_backward(Context<Backend>& ctx, View<const float, 1, Backend> y, View<const float, 1, Backend> dy,
                      View<float, 1, Backend> dx, GradientMode mode) {
  check_shape(dy, {y.size(0)}, "neg_exp_backward: dy");
  check_shape(dx, {y.size(0)}, "neg_exp_backward: dx");
  detail::neg_exp_backward_impl(ctx, y, dy, dx, mode);
}

}  // namespace bimamba
