// Cuda FBI-Linear backward (see ops/fbi_linear_backward.hpp; identity straight-through estimator): W_eff by
// fbi_weight, dx = dy W_eff and G = dy^T x by cuBLAS SGEMMs (ops/cuda/linear_backward.cuh), then one thread per
// input column j walks the rows of G in order: dW[i, j] = alpha[j] G[i, j], dalpha[j] = sum_i G[i, j] s(W[i, j]),
// dbeta[j] = sum_i G[i, j], the sums in double in the host's row order. Scratch: W_eff and G (out x in floats
// each) from ctx.workspace().
#pragma once

#include "../../core/workspace.hpp"
#include "fbi_weight.cuh"
#include "launch_backward.cuh"
#include "linear_backward.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void fbi_grad_columns_kernel(TensorView<const T, 2, Cuda> G, TensorView<const T, 2, Cuda> W,
                                        TensorView<const T, 1, Cuda> alpha, TensorView<T, 2, Cuda> dW,
                                        TensorView<T, 1, Cuda> dalpha, TensorView<T, 1, Cuda> dbeta, GradientMode mode) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= G.size(1)) return;
  const bool has_dW = present(dW);
  double sa = 0, sb = 0;
  for (int64_t i = 0; i < G.size(0); ++i) {
    const double g = G(i, j);
    if (has_dW) put_grad(dW(i, j), double(alpha(j)) * g, mode);
    sa += W(i, j) >= 0.0f ? g : -g;
    sb += g;
  }
  if (present(dalpha)) put_grad(dalpha(j), sa, mode);
  if (present(dbeta)) put_grad(dbeta(j), sb, mode);
}
}  // namespace gpu

inline void fbi_linear_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                     TensorView<const float, 2, Cuda> W, TensorView<const float, 1, Cuda> alpha,
                                     TensorView<const float, 1, Cuda> beta, TensorView<const float, 2, Cuda> dy,
                                     TensorView<float, 2, Cuda> dx, TensorView<float, 2, Cuda> dW,
                                     TensorView<float, 1, Cuda> dalpha, TensorView<float, 1, Cuda> dbeta,
                                     GradientMode mode) {
  const int64_t in = x.size(1), out = W.size(0);
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  if (present(dx)) {
    TensorView<float, 2, Cuda> w_eff(ws.take<float>(size_t(out * in)), {out, in});  // (out, in)
    fbi_weight_impl(ctx, W, alpha, beta, w_eff);
    linear_dx(ctx, w_eff, dy, dx, mode);
  }
  if ((!present(dW) && !present(dalpha) && !present(dbeta)) || in == 0) return;
  TensorView<float, 2, Cuda> G(ws.take<float>(size_t(out * in)), {out, in});  // (out, in) dL/dW_eff
  linear_dw(ctx, x, dy, G, GradientMode::Overwrite);
  gpu::fbi_grad_columns_kernel<float><<<unsigned((in + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads, 0,
                                        ctx.stream()>>>(G, W, alpha, dW, dalpha, dbeta, mode);
  gpu::check_launch();
}

}  // namespace bimamba::detail
