// Host dense linear layer (see ops/linear.hpp): Eigen GEMMs, y = x W^T, then the bias row-wise. The work
// is split over the context's threads by token rows when there are many tokens (prefill), else by output
// features (decoding, where x has a few rows and W dominates).
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/eigen.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void linear_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x, TensorView<const float, 2, Host> weight,
                        TensorView<const float, 1, Host> bias, TensorView<float, 2, Host> y) {
  if (y.numel() == 0) return;
  auto Y = as_matrix(y);
  if (x.size(1) == 0) {
    Y.setZero();
  } else {
    const auto X = as_matrix(x);
    const auto W = as_matrix(weight);
    const int64_t T = x.size(0), in = x.size(1), out = weight.size(0);
    if (T >= 32 * int64_t(ctx.threads())) {
      ctx.parallel_for(x.size(0), [&](int64_t begin, int64_t end) {
        Y.middleRows(begin, end - begin).noalias() = X.middleRows(begin, end - begin) * W.transpose();
      }, std::max<int64_t>(8, grain(2 * in * out)));
    } else {
      ctx.parallel_for(weight.size(0), [&](int64_t begin, int64_t end) {
        Y.middleCols(begin, end - begin).noalias() = X * W.middleRows(begin, end - begin).transpose();
      }, std::max<int64_t>(16, grain(2 * T * in)));
    }
  }
  if (present(bias)) Y.rowwise() += as_vector(bias).transpose();
}

}  // namespace bimamba::detail
