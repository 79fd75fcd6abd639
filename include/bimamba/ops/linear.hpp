// linear: y = x W^T (+ bias), a dense GEMM (Eigen on Host, cuBLAS on Cuda).
//   x (T, in) (unit inner stride, any row stride), weight (out, in) (unit inner stride),
//   bias (out) or empty, y (T, out) (unit inner stride; must not overlap x).
// Also the tied LM head: logits = h E^T with weight = the embedding table (V, D).
#pragma once

#include "common.hpp"
#include "host/linear.hpp"
#if defined(__CUDACC__) && __has_include("cuda/linear.cuh")
#include "cuda/linear.cuh"
#endif

namespace bimamba {

template <class Backend>
void linear(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> weight,
            View<const float, 1, Backend> bias, View<float, 2, Backend> y) {
  BIMAMBA_CHECK(x.size(1) == weight.size(1), "linear: x has ", x.size(1), " features, weight ",
                shape_string<2>(weight.shape()), " expects ", weight.size(1));
  if (present(bias)) check_shape(bias, {weight.size(0)}, "linear: bias");
  check_shape(y, {x.size(0), weight.size(0)}, "linear: y");
  BIMAMBA_CHECK((x.stride(1) == 1 || x.size(1) <= 1) && (weight.stride(1) == 1 || weight.size(1) <= 1) &&
                    (y.stride(1) == 1 || y.size(1) <= 1),
                "linear: x, weight and y need unit inner stride");
  detail::linear_impl(ctx, x, weight, bias, y);
}

}  // namespace bimamba
