// Host latent FBI-Linear product (see ops/fbi_linear.hpp): W_eff in workspace scratch, then the dense GEMM.
#pragma once

#include "../../core/workspace.hpp"
#include "fbi_weight.hpp"
#include "linear.hpp"

namespace bimamba::detail {

inline void fbi_linear_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x, TensorView<const float, 2, Host> W,
                            TensorView<const float, 1, Host> alpha, TensorView<const float, 1, Host> beta,
                            TensorView<float, 2, Host> y) {
  WorkspaceScope<Host> scope(ctx.workspace());
  TensorView<float, 2, Host> w_eff(ctx.workspace().take<float>(size_t(W.numel())), {W.size(0), W.size(1)});
  fbi_weight_impl(ctx, W, alpha, beta, w_eff);
  linear_impl(ctx, x, w_eff, {}, y);
}

}  // namespace bimamba::detail
