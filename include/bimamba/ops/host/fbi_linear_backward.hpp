// Host FBI-Linear backward (see ops/fbi_linear_backward.hpp): W_eff formed by fbi_weight, dx and G by Eigen
// GEMMs, then one pass over G for dW, dalpha, dbeta (column sums in double, row order).
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/eigen.hpp"
#include "backward_common.hpp"
#include "fbi_weight.hpp"
#include "linear_backward.hpp"

namespace bimamba::detail {

inline void fbi_linear_backward_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,
                                     TensorView<const float, 2, Host> W, TensorView<const float, 1, Host> alpha,
                                     TensorView<const float, 1, Host> beta, TensorView<const float, 2, Host> dy,
                                     TensorView<float, 2, Host> dx, TensorView<float, 2, Host> dW,
                                     TensorView<float, 1, Host> dalpha, TensorView<float, 1, Host> dbeta,
                                     GradientMode dx_mode, GradientMode mode) {
  const int64_t in = x.size(1), out = W.size(0);
  auto& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  if (present(dx)) {
    TensorView<float, 2, Host> w_eff(ws.take<float>(size_t(out * in)), {out, in});  // (out, in)
    fbi_weight_impl(ctx, W, alpha, beta, w_eff);
    put_matrix(as_matrix(dx), as_matrix(dy) * as_matrix(TensorView<const float, 2, Host>(w_eff)), dx_mode);
  }
  if (!present(dW) && !present(dalpha) && !present(dbeta)) return;
  TensorView<float, 2, Host> G(ws.take<float>(size_t(out * in)), {out, in});  // (out, in) dL/dW_eff
  as_matrix(G).noalias() = as_matrix(dy).transpose() * as_matrix(x);
  for (int64_t j = 0; j < in; ++j) {
    double sa = 0, sb = 0;
    for (int64_t i = 0; i < out; ++i) {
      const double g = G(i, j);
      if (present(dW)) put_grad(dW(i, j), double(alpha(j)) * g, mode);
      sa += W(i, j) >= 0.0f ? g : -g;
      sb += g;
    }
    if (present(dalpha)) put_grad(dalpha(j), sa, mode);
    if (present(dbeta)) put_grad(dbeta(j), sb, mode);
  }
}

}  // namespace bimamba::detail
