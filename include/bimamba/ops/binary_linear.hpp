// FBI-Linear forward on packed signs (the binarized in_proj / out_proj of Bi-Mamba):
//
//   y (T, out) = S (alpha ⊙ x) + (beta · x) 1          S (out, in) in {-1, +1}, packed in a BitTensor
//
// i.e. y[t, i] = sum_j x[t, j] * (alpha[j] * S[i, j] + beta[j]) = x W_eff^T with W_eff = alpha ⊙ S + beta.
// The bit layout is tensor/bit_tensor.hpp's (bit j of a row is bit j % 32 of word j / 32, 1 = +1); padding
// bits never influence y. x and y must have unit inner stride (any row stride); alpha and beta any stride.
// y is overwritten. On Host the kernel is the fp32 lookup-table kernel of ops/host/binary_linear.hpp; its
// error is below (in + 2) u sum_j |x_j| (|alpha_j| + |beta_j|), u = 2^-24 (docs/kernels.md).
// For decoding at memory speed on Host, re-lay the signs out once as TiledSigns and call the overload at the
// end of this file (int16 shuffle tables on activations quantized per 32 columns; relative error ~7e-4).
//
// bf16 activations (the overload on bfloat16 x and y, both backends; alpha and beta stay float): x's values
// are exact in float and go through the same fp32 arithmetic, and y is rounded once to bf16 (round to nearest
// even) at the end, adding |error| <= 2^-8 |y| per element. On Host the result is bit-for-bit the float op on
// float(x), rounded; on Cuda the kernels read bf16 x and write bf16 y themselves (ops/cuda/binary_linear.cuh).
//
// Backend is deduced from the Context alone (ops/common.hpp View), so Tensors and BitTensors may be passed.
#pragma once

#include <cstdint>

#include "../core/dtype.hpp"
#include "../tensor/bit_tensor.hpp"
#include "common.hpp"
#include "host/binary_linear.hpp"
#include "host/binary_linear_prefill.hpp"
#include "host/binary_linear_shuffle.hpp"

#if defined(__CUDACC__) && __has_include("cuda/binary_linear.cuh")
#include "cuda/binary_linear.cuh"
#endif

namespace bimamba {

namespace detail {
// Act: the activations' type (float or bfloat16), deduced from x and y.
template <class Backend, class Act>
void check_binary_linear(View<const Act, 2, Backend> x, int64_t rows, int64_t cols, View<const float, 1, Backend> alpha,
                         View<const float, 1, Backend> beta, View<Act, 2, Backend> y) {
  const int64_t T = x.size(0), in = x.size(1);
  BIMAMBA_CHECK(cols == in, "binary_linear: signs have ", cols, " columns, x has ", in);
  check_shape(alpha, {in}, "binary_linear: alpha");
  check_shape(beta, {in}, "binary_linear: beta");
  check_shape(y, {T, rows}, "binary_linear: y");
  BIMAMBA_CHECK(x.stride(1) == 1 || in <= 1, "binary_linear: x has inner stride ", x.stride(1), ", must be 1");
  BIMAMBA_CHECK(y.stride(1) == 1 || rows <= 1, "binary_linear: y has inner stride ", y.stride(1), ", must be 1");
}
}  // namespace detail

template <class Backend>
void binary_linear(Context<Backend>& ctx, View<const float, 2, Backend> x,                         // (T, in)
                   BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,  // (out, in)
                   View<const float, 1, Backend> alpha,                                             // (in)
                   View<const float, 1, Backend> beta,                                              // (in)
                   View<float, 2, Backend> y) {                                                     // (T, out)
  detail::check_binary_linear<Backend>(x, signs.rows(), signs.cols(), alpha, beta, y);
  if (x.size(0) == 0 || signs.rows() == 0) return;
  detail::binary_linear_impl(ctx, x, signs, alpha, beta, y);
}

// bf16 activations: the same shapes and contracts, fp32 arithmetic, y rounded once to bf16 (top of this file).
template <class Backend>
void binary_linear(Context<Backend>& ctx, View<const bfloat16, 2, Backend> x,                      // (T, in)
                   BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,  // (out, in)
                   View<const float, 1, Backend> alpha,                                             // (in)
                   View<const float, 1, Backend> beta,                                              // (in)
                   View<bfloat16, 2, Backend> y) {                                                  // (T, out)
  detail::check_binary_linear<Backend>(x, signs.rows(), signs.cols(), alpha, beta, y);
  if (x.size(0) == 0 || signs.rows() == 0) return;
  detail::binary_linear_impl(ctx, x, signs, alpha, beta, y);
}

// The same on TiledSigns (Host only): the quantized shuffle kernel of ops/host/binary_linear_shuffle.hpp,
// several times faster for decoding; |error| <= sum_j d_w(j) / 2 with d_w = max_{j in word w} |alpha_j x_j| / 1023.
// From T = 16 tokens on (prefill) the same arithmetic runs in the cache-blocked, token-parallel loop order of
// ops/host/binary_linear_prefill.hpp; y is bit-identical either way.
inline void binary_linear(Context<Host>& ctx, View<const float, 2, Host> x,  // (T, in)
                          const TiledSigns& signs,                            // (out, in)
                          View<const float, 1, Host> alpha,                   // (in)
                          View<const float, 1, Host> beta,                    // (in)
                          View<float, 2, Host> y) {                           // (T, out)
  detail::check_binary_linear<Host>(x, signs.rows(), signs.cols(), alpha, beta, y);
  if (x.size(0) == 0 || signs.rows() == 0) return;
  if (x.size(0) >= detail::prefill::kMinTokens) detail::binary_linear_prefill_impl(ctx, x, signs, alpha, beta, y);
  else detail::binary_linear_impl(ctx, x, signs, alpha, beta, y);
}

}  // namespace bimamba
