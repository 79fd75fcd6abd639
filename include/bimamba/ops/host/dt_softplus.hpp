// Host time-step activation (see ops/dt_softplus.hpp).
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void dt_softplus_impl(Context<Host>& ctx, TensorView<const float, 2, Host> dt, TensorView<const float, 1, Host> bias,
                             float lo, float hi, TensorView<float, 2, Host> out) {
  const int64_t H = dt.size(1);
  const bool has_bias = present(bias);
  ctx.parallel_for(dt.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t h = 0; h < H; ++h)
        out(t, h) = std::min(hi, std::max(lo, softplus(dt(t, h) + (has_bias ? bias(h) : 0.0f))));
  }, grain(20 * H));
}

}  // namespace bimamba::detail
