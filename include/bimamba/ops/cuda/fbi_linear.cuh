// Cuda latent FBI-Linear product (see ops/fbi_linear.hpp): in bf16 the sign GEMM (ops/cuda/fbi_sign_gemm.cuh)
// where it pays (fbi_sign_gemm_pays: rows T <= 2 out); otherwise, and in fp32 / TF32, W_eff in workspace
// scratch, then the dense GEMM in the context's precision.
#pragma once

#include "../../core/workspace.hpp"
#include "fbi_sign_gemm.cuh"
#include "fbi_weight.cuh"
#include "linear.cuh"

namespace bimamba::detail {

inline void fbi_linear_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> W,
                            TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                            TensorView<float, 2, Cuda> y) {
  if (ctx.gemm_precision() == GemmPrecision::Bf16 && fbi_sign_gemm_pays(x.size(0), W.size(0)))
    return fbi_sign_forward(ctx, x, W, alpha, beta, y);
  WorkspaceScope<Cuda> scope(ctx.workspace());
  TensorView<float, 2, Cuda> w_eff(ctx.workspace().take<float>(size_t(W.numel())), {W.size(0), W.size(1)});
  fbi_weight_impl(ctx, W, alpha, beta, w_eff);
  linear_impl(ctx, x, w_eff, {}, y);
}

}  // namespace bimamba::detail
