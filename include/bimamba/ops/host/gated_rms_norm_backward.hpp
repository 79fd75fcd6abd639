// Host gated group-wise RMSNorm backward (see ops/gated_rms_norm_backward.hpp): dy, dz row by row in
// parallel; dweight column sums on the calling thread, in double and token order.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void gated_rms_norm_backward_impl(Context<Host>& ctx, TensorView<const float, 2, Host> y,
                                         TensorView<const float, 2, Host> z, TensorView<const float, 1, Host> w,
                                         int64_t groups, float eps, TensorView<const float, 2, Host> dout,
                                         TensorView<float, 2, Host> dy, TensorView<float, 2, Host> dz,
                                         TensorView<float, 1, Host> dw, GradientModes modes) {
  const int64_t T = y.size(0), E = y.size(1), S = E / groups;
  WorkspaceScope<Host> scope(ctx.workspace());
  float* r = ctx.workspace().take<float>(size_t(T * groups));  // (T, groups) 1 / rms of each group
  auto gate = [&](int64_t t, int64_t j) { return double(y(t, j)) * silu(z(t, j)); };
  ctx.parallel_for(T, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      for (int64_t g = 0; g < groups; ++g) {
        double sum = 0, dot = 0;
        for (int64_t j = g * S; j < (g + 1) * S; ++j) {
          const double v = gate(t, j);
          sum += v * v;
          dot += double(w(j)) * dout(t, j) * v;
        }
        const double rt = 1.0 / std::sqrt(sum / double(S) + eps);
        r[t * groups + g] = float(rt);
        const double c = rt * rt * rt * dot / double(S);
        for (int64_t j = g * S; j < (g + 1) * S; ++j) {
          const double dg = rt * w(j) * dout(t, j) - c * gate(t, j);
          if (present(dy)) put_grad(dy(t, j), dg * silu(z(t, j)), modes.inputs);
          if (present(dz)) put_grad(dz(t, j), dg * y(t, j) * silu_grad(z(t, j)), modes.inputs);
        }
      }
  }, grain(12 * E));
  if (!present(dw)) return;
  for (int64_t j = 0; j < E; ++j) {
    double s = 0;
    for (int64_t t = 0; t < T; ++t) s += double(dout(t, j)) * gate(t, j) * r[t * groups + j / S];
    put_grad(dw(j), s, modes.params);
  }
}

}  // namespace bimamba::detail
