// Host embedding backward (see ops/embedding_backward.hpp): ids checked first, then a scatter-add over the
// positions in order on the calling thread (deterministic; T D adds are cheap next to the head's GEMM).
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "backward_common.hpp"

namespace bimamba::detail {

inline void embedding_backward_impl(Context<Host>&, TensorView<const int32_t, 2, Host> ids,
                                    TensorView<const float, 3, Host> dout, TensorView<float, 2, Host> dweight,
                                    GradientMode mode) {
  const int64_t B = ids.size(0), L = ids.size(1), V = dweight.size(0), D = dweight.size(1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      BIMAMBA_CHECK(ids(b, l) >= 0 && ids(b, l) < V, "embedding_backward: token id ", ids(b, l), " at (", b, ", ", l,
                    ") is outside the vocabulary [0, ", V, ")");
  begin_grad(dweight, mode);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < D; ++j) dweight(ids(b, l), j) += dout(b, l, j);
}

}  // namespace bimamba::detail
