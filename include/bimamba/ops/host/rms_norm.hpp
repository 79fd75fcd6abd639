// Host RMSNorm and fused residual add + RMSNorm (see ops/rms_norm.hpp): one row per token, rows in parallel.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

// y[j] = x[j] * rsqrt(mean x^2 + eps) * w[j] for one row (strided access).
inline void rms_norm_row(TensorView<const float, 1, Host> x, TensorView<const float, 1, Host> w, float eps,
                         TensorView<float, 1, Host> y) {
  const int64_t D = x.size(0);
  float sum = 0.0f;
  for (int64_t j = 0; j < D; ++j) sum += x(j) * x(j);
  const float scale = 1.0f / std::sqrt(sum / float(D) + eps);
  for (int64_t j = 0; j < D; ++j) y(j) = x(j) * scale * w(j);
}

inline void rms_norm_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x, TensorView<const float, 1, Host> weight,
                          float eps, TensorView<float, 2, Host> y) {
  ctx.parallel_for(x.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) rms_norm_row(x[t], weight, eps, y[t]);
  }, grain(4 * x.size(1)));
}

inline void add_rms_norm_impl(Context<Host>& ctx, TensorView<float, 2, Host> residual, TensorView<const float, 2, Host> x,
                              TensorView<const float, 1, Host> weight, float eps, TensorView<float, 2, Host> y) {
  const int64_t D = x.size(1);
  ctx.parallel_for(x.size(0), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t j = 0; j < D; ++j) residual(t, j) += x(t, j);
      rms_norm_row(residual[t], weight, eps, y[t]);
    }
  }, grain(5 * D));
}

}  // namespace bimamba::detail
