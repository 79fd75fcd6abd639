// Host FBI effective weight (see ops/fbi_weight.hpp): rows in parallel.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void fbi_weight_impl(Context<Host>& ctx, TensorView<const float, 2, Host> W, TensorView<const float, 1, Host> alpha,
                            TensorView<const float, 1, Host> beta, TensorView<float, 2, Host> W_eff) {
  const int64_t in = W.size(1);
  ctx.parallel_for(W.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < in; ++j) W_eff(i, j) = (W(i, j) >= 0.0f ? alpha(j) : -alpha(j)) + beta(j);
  }, grain(2 * in));
}

}  // namespace bimamba::detail
