// Cuda FBI-Linear backward (see ops/fbi_linear_backward.hpp; identity straight-through estimator). In bf16
// (GemmPrecision::Bf16) through sign GEMMs (ops/cuda/fbi_sign_gemm.cuh) where they pay (fbi_sign_gemm_pays, the
// forward's rule); otherwise, and in fp32 / TF32: W_eff by fbi_weight, dx = dy W_eff and G = dy^T x by cuBLAS
// GEMMs in the context's precision (ops/cuda/linear_backward.cuh), then one column_reduce pass over G
// (ops/cuda/column_reduce.cuh): dW[i, j] = alpha[j] G[i, j], dalpha[j] = sum_i G[i, j] s(W[i, j]),
// dbeta[j] = sum_i G[i, j], the sums in double. Scratch: W_eff and G (out x in floats each) from ctx.workspace().
// Profiler ranges inside the caller's: dx (W_eff and its product), dw_gemm, weight_sums.
#pragma once

#include "../../core/profile_range.hpp"
#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "fbi_sign_gemm.cuh"
#include "fbi_weight.cuh"
#include "launch_backward.cuh"
#include "linear_backward.cuh"

namespace bimamba::detail {

namespace gpu {
// Per (i, j): writes dW[i, j] = alpha[j] G[i, j]; the terms of dalpha[j] and dbeta[j].
template <class T>
struct FbiGradTerm {
  TensorView<const T, 2, Cuda> G, W;
  TensorView<const T, 1, Cuda> alpha;
  TensorView<T, 2, Cuda> dW;
  GradientMode mode;
  __device__ ColumnTerms<2> operator()(int64_t i, int64_t j) const {
    const double g = G(i, j);
    if (present(dW)) put_grad(dW(i, j), double(alpha(j)) * g, mode);
    return {{W(i, j) >= 0.0f ? g : -g, g}};
  }
};
}  // namespace gpu

inline void fbi_linear_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                     TensorView<const float, 2, Cuda> W, TensorView<const float, 1, Cuda> alpha,
                                     TensorView<const float, 1, Cuda> beta, TensorView<const float, 2, Cuda> dy,
                                     TensorView<float, 2, Cuda> dx, TensorView<float, 2, Cuda> dW,
                                     TensorView<float, 1, Cuda> dalpha, TensorView<float, 1, Cuda> dbeta,
                                     GradientMode dx_mode, GradientMode mode) {
  if (ctx.gemm_precision() == GemmPrecision::Bf16 && fbi_sign_gemm_pays(x.size(0), W.size(0)))
    return fbi_sign_backward(ctx, x, W, alpha, beta, dy, dx, dW, dalpha, dbeta, dx_mode, mode);
  const int64_t in = x.size(1), out = W.size(0);
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  if (present(dx)) {
    ProfileRange<Cuda> range(ctx, "dx");
    TensorView<float, 2, Cuda> w_eff(ws.take<float>(size_t(out * in)), {out, in});  // (out, in)
    fbi_weight_impl(ctx, W, alpha, beta, w_eff);
    linear_dx(ctx, w_eff, dy, dx, dx_mode);
  }
  if ((!present(dW) && !present(dalpha) && !present(dbeta)) || in == 0) return;
  TensorView<float, 2, Cuda> G(ws.take<float>(size_t(out * in)), {out, in});  // (out, in) dL/dW_eff
  {
    ProfileRange<Cuda> range(ctx, "dw_gemm");
    linear_dw(ctx, x, dy, G, GradientMode::Overwrite);
  }
  ProfileRange<Cuda> range(ctx, "weight_sums");
  column_reduce<2>(ctx, out, in, gpu::FbiGradTerm<float>{G, W, alpha, dW, mode},
                   gpu::PutColumnGradPair<float>{dalpha, dbeta, mode});
}

}  // namespace bimamba::detail
