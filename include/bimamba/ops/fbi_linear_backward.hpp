// Backward of the latent FBI-Linear layer (Bi-Mamba's binarized projection, DESIGN.md "The math"):
//   W_eff[i, j] = alpha[j] s(W[i, j]) + beta[j],   y = x W_eff^T,   s(w) = +1 for w >= 0 else -1
//   G = dy^T x                                   (out, in), summed over tokens
//   dW[i, j]  = alpha[j] G[i, j]                 identity straight-through estimator: d s(w) / dw := 1, no clipping
//   dalpha[j] = sum_i G[i, j] s(W[i, j])
//   dbeta[j]  = sum_i G[i, j]
//   dx = dy W_eff                                (T, in)
// x, dx (T, in); W, dW (out, in); alpha, beta, dalpha, dbeta (in); dy (T, out). Every output follows its mode;
// any may be an empty view. Scratch from ctx.workspace(): W_eff and G (out x in floats each), or on Cuda in bf16
// the sign GEMMs' operands (ops/cuda/fbi_sign_gemm.cuh).
#pragma once

#include "common.hpp"
#include "host/fbi_linear_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/fbi_linear_backward.cuh")
#include "cuda/fbi_linear_backward.cuh"
#endif

namespace bimamba {

// dx follows dx_mode, dW / dalpha / dbeta follow mode: the layer's backward in one call (a model's dx is
// Overwritten, its parameter gradients Accumulate), so work both need (the Cuda bf16 path's dy S) is done once.
template <class Backend>
void fbi_linear_backward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> W,
                         View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,
                         View<const float, 2, Backend> dy, View<float, 2, Backend> dx, View<float, 2, Backend> dW,
                         View<float, 1, Backend> dalpha, View<float, 1, Backend> dbeta, GradientMode dx_mode,
                         GradientMode mode) {
  const int64_t T = x.size(0), in = x.size(1), out = W.size(0);
  check_shape(W, {out, in}, "fbi_linear_backward: W");
  check_shape(alpha, {in}, "fbi_linear_backward: alpha");
  check_shape(beta, {in}, "fbi_linear_backward: beta");
  check_shape(dy, {T, out}, "fbi_linear_backward: dy");
  if (present(dx)) check_shape(dx, {T, in}, "fbi_linear_backward: dx");
  if (present(dW)) check_shape(dW, {out, in}, "fbi_linear_backward: dW");
  if (present(dalpha)) check_shape(dalpha, {in}, "fbi_linear_backward: dalpha");
  if (present(dbeta)) check_shape(dbeta, {in}, "fbi_linear_backward: dbeta");
  detail::fbi_linear_backward_impl(ctx, x, W, alpha, beta, dy, dx, dW, dalpha, dbeta, dx_mode, mode);
}

// Every output under one mode.
template <class Backend>
void fbi_linear_backward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 2, Backend> W,
                         View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,
                         View<const float, 2, Backend> dy, View<float, 2, Backend> dx, View<float, 2, Backend> dW,
                         View<float, 1, Backend> dalpha, View<float, 1, Backend> dbeta, GradientMode mode) {
  fbi_linear_backward(ctx, x, W, alpha, beta, dy, dx, dW, dalpha, dbeta, mode, mode);
}

}  // namespace bimamba
