// Host linear backward (see ops/linear_backward.hpp): Eigen GEMMs (which use their own threads when Eigen
// is built with OpenMP), dbias as column sums in double.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/eigen.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

// out (= or +=) a for Eigen expressions.
template <class Dst, class Expr>
void put_matrix(Dst&& out, const Expr& a, GradientMode mode) {
  if (mode == GradientMode::Overwrite) out.noalias() = a;
  else out.noalias() += a;
}

inline void linear_backward_impl(Context<Host>&, TensorView<const float, 2, Host> x, TensorView<const float, 2, Host> W,
                                 TensorView<const float, 2, Host> dy, TensorView<float, 2, Host> dx,
                                 TensorView<float, 2, Host> dW, TensorView<float, 1, Host> dbias, GradientMode mode) {
  const auto X = as_matrix(x);
  const auto Wm = as_matrix(W);
  const auto dY = as_matrix(dy);
  if (present(dx)) put_matrix(as_matrix(dx), dY * Wm, mode);
  if (present(dW)) put_matrix(as_matrix(dW), dY.transpose() * X, mode);
  if (present(dbias))
    for (int64_t o = 0; o < dy.size(1); ++o) {
      double s = 0;
      for (int64_t t = 0; t < dy.size(0); ++t) s += dy(t, o);
      put_grad(dbias(o), s, mode);
    }
}

}  // namespace bimamba::detail
