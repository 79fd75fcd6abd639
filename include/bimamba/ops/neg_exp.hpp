// neg_exp: y = -exp(x) elementwise; the SSM's A = -exp(A_log) (Mamba-2: (H), Mamba-1: (E, N) flattened).
// x, y (n), any strides; y may alias x.
#pragma once

#include "common.hpp"
#include "host/neg_exp.hpp"
#if defined(__CUDACC__) && __has_include("cuda/neg_exp.cuh")
#include "cuda/neg_exp.cuh"
#endif

namespace bimamba {

template <class Backend>
void neg_exp(Context<Backend>& ctx, View<const float, 1, Backend> x, View<float, 1, Backend> y) {
  check_shape(y, {x.size(0)}, "neg_exp: y");
  detail::neg_exp_impl(ctx, x, y);
}

}  // namespace bimamba
