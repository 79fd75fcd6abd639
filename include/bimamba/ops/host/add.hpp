// Host residual add (see ops/add.hpp): rows in parallel.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void add_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x, TensorView<float, 2, Host> y) {
  const int64_t D = x.size(1);
  ctx.parallel_for(x.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t j = 0; j < D; ++j) y(t, j) += x(t, j);
  }, grain(D));
}

}  // namespace bimamba::detail
