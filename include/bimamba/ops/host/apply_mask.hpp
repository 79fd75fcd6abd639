// Host padding mask (see ops/apply_mask.hpp): positions in parallel.
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void apply_mask_impl(Context<Host>& ctx, TensorView<const float, 2, Host> mask, TensorView<float, 3, Host> x) {
  const int64_t L = x.size(1), C = x.size(2);
  ctx.parallel_for(x.size(0) * L, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float m = mask(i / L, i % L);
      if (m != 1.0f)
        for (int64_t c = 0; c < C; ++c) x(i / L, i % L, c) *= m;
    }
  }, grain(C));
}

}  // namespace bimamba::detail
