// Host gated group-wise RMSNorm (see ops/gated_rms_norm.hpp): rows in parallel; each group is normalized
// on its own.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void gated_rms_norm_impl(Context<Host>& ctx, TensorView<const float, 2, Host> y, TensorView<const float, 2, Host> z,
                                TensorView<const float, 1, Host> weight, int64_t groups, float eps,
                                TensorView<float, 2, Host> out) {
  const int64_t E = y.size(1), S = E / groups;
  ctx.parallel_for(y.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t g = 0; g < groups; ++g) {
        float sum = 0.0f;
        for (int64_t j = g * S; j < (g + 1) * S; ++j) {
          const float v = y(t, j) * silu(z(t, j));
          out(t, j) = v;  // out may alias y: each element is read before it is written
          sum += v * v;
        }
        const float scale = 1.0f / std::sqrt(sum / float(S) + eps);
        for (int64_t j = g * S; j < (g + 1) * S; ++j) out(t, j) = out(t, j) * scale * weight(j);
      }
  }, grain(8 * E));
}

}  // namespace bimamba::detail
