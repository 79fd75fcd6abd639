// Host kernels over flat float buffers for train/grad_utils.hpp and train/adamw.hpp: sum of squares,
// scaling, the first non-finite element.
//
// Reductions split the buffer into fixed blocks of kReduceBlock elements, reduce each block in double on
// whichever thread owns it, and add the block results in block order: the result does not depend on the
// thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail {

inline constexpr int64_t kReduceBlock = 1 << 14;

// sum_i x[i]^2 in double.
inline double sum_squares_impl(Context<Host>& ctx, TensorView<const float, 1, Host> x) {
  const int64_t n = x.size(0);
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks == 0) return 0.0;
  WorkspaceScope<Host> scope(ctx.workspace());
  double* partial = ctx.workspace().take<double>(size_t(blocks));
  const float* data = x.data();
  ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double s = 0;
      for (int64_t i = b * kReduceBlock, end = std::min(n, i + kReduceBlock); i < end; ++i)
        s += double(data[i]) * double(data[i]);
      partial[b] = s;
    }
  });
  double total = 0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  return total;
}

// x *= factor.
inline void scale_impl(Context<Host>& ctx, TensorView<float, 1, Host> x, float factor) {
  float* data = x.data();
  ctx.parallel_for(
      x.size(0),
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) data[i] *= factor;
      },
      kReduceBlock);
}

// Index of the first element that is NaN or +-Inf, or -1.
inline int64_t first_non_finite_impl(Context<Host>& ctx, TensorView<const float, 1, Host> x) {
  const int64_t n = x.size(0);
  const int64_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks == 0) return -1;
  WorkspaceScope<Host> scope(ctx.workspace());
  int64_t* first = ctx.workspace().take<int64_t>(size_t(blocks));
  const float* data = x.data();
  ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      first[b] = -1;
      for (int64_t i = b * kReduceBlock, end = std::min(n, i + kReduceBlock); i < end; ++i)
        if (!std::isfinite(data[i])) {
          first[b] = i;
          break;
        }
    }
  });
  for (int64_t b = 0; b < blocks; ++b)
    if (first[b] >= 0) return first[b];
  return -1;
}

}  // namespace bimamba::detail
