// FBI-Linear forward on packed signs (the binarized in_proj / out_proj of Bi-Mamba):
//
//   y (T, out) = S (alpha ⊙ x) + (beta · x) 1          S (out, in) in {-1, +1}, packed in a BitTensor
//
// i.e. y[t, i] = sum_j x[t, j] * (alpha[j] * S[i, j] + beta[j]) = x W_eff^T with W_eff = alpha ⊙ S + beta.
// The bit layout is tensor/bit_tensor.hpp's (bit j of a row is bit j % 32 of word j / 32, 1 = +1); padding
// bits never influence y. x and y must have unit inner stride (any row stride); alpha and beta any stride.
// y is overwritten. On Host the kernel is the fp32 lookup-table kernel of ops/host/binary_linear.hpp; its
// rounding error is that of fp32 sums over in/8 terms (docs/kernels.md).
//
// Backend is deduced from the Context alone (ops/common.hpp View), so Tensors and BitTensors may be passed.
#pragma once

#include <cstdint>

#include "../tensor/bit_tensor.hpp"
#include "common.hpp"
#include "host/binary_linear.hpp"

#if defined(__CUDACC__) && __has_include("cuda/binary_linear.cuh")
#include "cuda/binary_linear.cuh"
#endif

namespace bimamba {

template <class Backend>
void binary_linear(Context<Backend>& ctx, View<const float, 2, Backend> x,                         // (T, in)
                   BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,  // (out, in)
                   View<const float, 1, Backend> alpha,                                             // (in)
                   View<const float, 1, Backend> beta,                                              // (in)
                   View<float, 2, Backend> y) {                                                     // (T, out)
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows();
  BIMAMBA_CHECK(signs.cols() == in, "binary_linear: signs have ", signs.cols(), " columns, x has ", in);
  check_shape(alpha, {in}, "binary_linear: alpha");
  check_shape(beta, {in}, "binary_linear: beta");
  check_shape(y, {T, out}, "binary_linear: y");
  BIMAMBA_CHECK(x.stride(1) == 1 || in <= 1, "binary_linear: x has inner stride ", x.stride(1), ", must be 1");
  BIMAMBA_CHECK(y.stride(1) == 1 || out <= 1, "binary_linear: y has inner stride ", y.stride(1), ", must be 1");
  if (T == 0 || out == 0) return;
  detail::binary_linear_impl(ctx, x, signs, alpha, beta, y);
}

}  // namespace bimamba
