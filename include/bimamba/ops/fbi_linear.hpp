// fbi_linear: the product of a latent FBI-Linear layer (DESIGN.md, FBI-Linear), what BinaryLinear's forward
// computes before pack():
//   y = x W_eff^T,   W_eff[i, j] = alpha[j] s(W[i, j]) + beta[j]   (ops/fbi_weight.hpp)
//   x (T, in), W (out, in), y (T, out), each with unit inner stride; alpha, beta (in); y must not overlap x.
// Host, and Cuda in fp32 / TF32: W_eff in workspace scratch, then linear (a dense GEMM). Cuda in bf16
// (GemmPrecision::Bf16): one sign GEMM with alpha and beta folded into x (ops/cuda/fbi_sign_gemm.cuh).
#pragma once

#include "common.hpp"
#include "host/fbi_linear.hpp"
#if defined(__CUDACC__) && __has_include("cuda/fbi_linear.cuh")
#include "cuda/fbi_linear.cuh"
#endif

namespace bimamba {

template <class Backend>
void fbi_linear(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> W,
                View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta, View<float, 2, Backend> y) {
  const int64_t T = x.size(0), in = x.size(1), out = W.size(0);
  check_shape(W, {out, in}, "fbi_linear: W");
  check_shape(alpha, {in}, "fbi_linear: alpha");
  check_shape(beta, {in}, "fbi_linear: beta");
  check_shape(y, {T, out}, "fbi_linear: y");
  BIMAMBA_CHECK((x.stride(1) == 1 || in <= 1) && (W.stride(1) == 1 || in <= 1) && (y.stride(1) == 1 || out <= 1),
                "fbi_linear: x, W and y need unit inner stride");
  detail::fbi_linear_impl(ctx, x, W, alpha, beta, y);
}

}  // namespace bimamba
