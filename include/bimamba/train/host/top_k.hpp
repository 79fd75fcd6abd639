// Host kernel of top_k (train/teacher_topk.hpp): per row, std::partial_sort of the V indices by
// (logit descending, id ascending) on a per-chunk index scratch row from the workspace; rows split across
// threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail {

inline void top_k_impl(Context<Host>& ctx, TensorView<const float, 3, Host> logits, TensorView<int32_t, 3, Host> ids,
                       TensorView<float, 3, Host> values) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2), K = ids.size(2);
  const int64_t rows = B * L;
  if (rows == 0) return;
  WorkspaceScope<Host> scope(ctx.workspace());
  const int64_t chunks = std::min<int64_t>(std::max(1, ctx.threads()), rows);
  int32_t* scratch = ctx.workspace().take<int32_t>(size_t(chunks * V));
  ctx.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      int32_t* order = scratch + c * V;
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r) {
        const int64_t b = r / L, t = r % L;
        const float* x = &logits(b, t, 0);
        std::iota(order, order + V, 0);
        std::partial_sort(order, order + K, order + V,
                          [x](int32_t i, int32_t j) { return x[i] > x[j] || (x[i] == x[j] && i < j); });
        for (int64_t k = 0; k < K; ++k) {
          ids(b, t, k) = order[k];
          values(b, t, k) = x[order[k]];
        }
      }
    }
  });
}

}  // namespace bimamba::detail
