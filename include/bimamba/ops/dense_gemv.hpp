// dense_gemv: y (T, V) = x (T, D) W^T for a few tokens T, with W (V, D) stored in float32 or bfloat16 and
// fp32 accumulation: the tied LM head (logits = RMSNorm_f(h) E^T) when decoding, where streaming W once per
// step is the whole cost (bf16 storage halves it). x and W need unit inner stride (any row stride), y too.
// y is overwritten. Error: fp32 dot products of length D, |y - exact| <= (D + 1) u sum_d |x_d| |w_vd|
// (bf16 values are exact in float, so storage adds no rounding beyond the stored weights themselves).
#pragma once

#include <cstdint>

#include "../core/dtype.hpp"
#include "common.hpp"
#include "host/dense_gemv.hpp"

#if defined(__CUDACC__) && __has_include("cuda/dense_gemv.cuh")
#include "cuda/dense_gemv.cuh"
#endif

namespace bimamba {

namespace detail {
template <class W, class Backend>
void check_dense_gemv(const TensorView<const float, 2, Backend>& x, const TensorView<const W, 2, Backend>& weight,
                      const TensorView<float, 2, Backend>& y) {
  BIMAMBA_CHECK(x.size(1) == weight.size(1), "dense_gemv: x has ", x.size(1), " features, weight ",
                shape_string<2>(weight.shape()), " expects ", weight.size(1));
  check_shape(y, {x.size(0), weight.size(0)}, "dense_gemv: y");
  BIMAMBA_CHECK((x.stride(1) == 1 || x.size(1) <= 1) && (weight.stride(1) == 1 || weight.size(1) <= 1) &&
                    (y.stride(1) == 1 || y.size(1) <= 1),
                "dense_gemv: x, weight and y need unit inner stride");
}
}  // namespace detail

template <class Backend>
void dense_gemv(Context<Backend>& ctx, View<const float, 2, Backend> x,  // (T, D)
                View<const float, 2, Backend> weight,                      // (V, D)
                View<float, 2, Backend> y) {                               // (T, V)
  detail::check_dense_gemv<float, Backend>(x, weight, y);
  if (y.numel() == 0) return;
  detail::dense_gemv_impl(ctx, x, weight, y);
}

template <class Backend>
void dense_gemv(Context<Backend>& ctx, View<const float, 2, Backend> x,  // (T, D)
                View<const bfloat16, 2, Backend> weight,                   // (V, D)
                View<float, 2, Backend> y) {                               // (T, V)
  detail::check_dense_gemv<bfloat16, Backend>(x, weight, y);
  if (y.numel() == 0) return;
  detail::dense_gemv_impl(ctx, x, weight, y);
}

}  // namespace bimamba
