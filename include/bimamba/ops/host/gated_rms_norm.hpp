// Host gated group-wise RMSNorm (see ops/gated_rms_norm.hpp): rows in parallel; each group is normalized
// on its own. Rows whose last dimension is contiguous (y, z, out) take a vectorized path: the gate with
// Eigen's vectorized exp (within 2 ulp of expf) and the sum of squares in Eigen's order, so results differ
// from the scalar path by float rounding only.
#pragma once

#include <cmath>
#include <cstdint>

#include <Eigen/Core>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void gated_rms_norm_impl(Context<Host>& ctx, TensorView<const float, 2, Host> y, TensorView<const float, 2, Host> z,
                                TensorView<const float, 1, Host> weight, int64_t groups, float eps,
                                TensorView<float, 2, Host> out) {
  const int64_t E = y.size(1), S = E / groups;
  const bool contiguous = y.stride(1) == 1 && z.stride(1) == 1 && out.stride(1) == 1 && weight.stride(0) == 1;
  ctx.parallel_for(y.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t g = 0; g < groups; ++g) {
        if (contiguous && S > 0) {
          const Eigen::Map<const Eigen::ArrayXf> yg(&y(t, g * S), S), zg(&z(t, g * S), S), wg(&weight(g * S), S);
          Eigen::Map<Eigen::ArrayXf> og(&out(t, g * S), S);  // may alias yg: coefficient-wise, read before write
          og = yg * zg / (1.0f + (-zg).exp());
          const float scale = 1.0f / std::sqrt(og.square().sum() / float(S) + eps);
          og = og * scale * wg;
          continue;
        }
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
