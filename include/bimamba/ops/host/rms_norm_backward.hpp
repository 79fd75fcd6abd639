// Host RMSNorm backward (see ops/rms_norm_backward.hpp): dx row by row in parallel (rows are independent),
// then dweight column sums on the calling thread (in double, token order: thread-count independent).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void rms_norm_backward_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,
                                   TensorView<const float, 1, Host> w, float eps, TensorView<const float, 2, Host> dy,
                                   TensorView<float, 2, Host> dx, TensorView<float, 1, Host> dw, GradientMode mode) {
  const int64_t T = x.size(0), D = x.size(1);
  WorkspaceScope<Host> scope(ctx.workspace());
  float* r = ctx.workspace().take<float>(size_t(T));  // (T) 1 / rms of each row
  ctx.parallel_for(T, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      double sum = 0, dot = 0;
      for (int64_t j = 0; j < D; ++j) sum += double(x(t, j)) * x(t, j);
      const double rt = 1.0 / std::sqrt(sum / double(D) + eps);
      r[t] = float(rt);
      if (!present(dx)) continue;
      for (int64_t j = 0; j < D; ++j) dot += double(w(j)) * dy(t, j) * x(t, j);
      const double c = rt * rt * rt * dot / double(D);
      for (int64_t j = 0; j < D; ++j) put_grad(dx(t, j), rt * w(j) * dy(t, j) - c * x(t, j), mode);
    }
  }, grain(6 * D));
  if (!present(dw)) return;
  for (int64_t j = 0; j < D; ++j) {
    double s = 0;
    for (int64_t t = 0; t < T; ++t) s += double(dy(t, j)) * x(t, j) * r[t];
    put_grad(dw(j), s, mode);
  }
}

}  // namespace bimamba::detail
