// fbi_weight: the effective weight of an FBI-Linear layer from its latent weight (DESIGN.md, FBI-Linear):
//   W_eff[i, j] = alpha[j] * s(W[i, j]) + beta[j],   s(w) = +1 for w >= 0, -1 otherwise
//   W, W_eff (out, in) (W_eff must not overlap W); alpha, beta (in) (the checkpoint's wscale / wbias rows).
// The latent path of BinaryLinear multiplies by W_eff with a dense GEMM; the packed path (binary_linear)
// computes the same product from the sign bits, so the two agree to rounding.
#pragma once

#include "common.hpp"
#include "host/fbi_weight.hpp"
#if defined(__CUDACC__) && __has_include("cuda/fbi_weight.cuh")
#include "cuda/fbi_weight.cuh"
#endif

namespace bimamba {

template <class Backend>
void fbi_weight(Context<Backend>& ctx, View<const float, 2, Backend> W, View<const float, 1, Backend> alpha,
                View<const float, 1, Backend> beta, View<float, 2, Backend> W_eff) {
  check_shape(alpha, {W.size(1)}, "fbi_weight: alpha");
  check_shape(beta, {W.size(1)}, "fbi_weight: beta");
  check_shape(W_eff, {W.size(0), W.size(1)}, "fbi_weight: W_eff");
  detail::fbi_weight_impl(ctx, W, alpha, beta, W_eff);
}

}  // namespace bimamba
