// Host embedding gather (see ops/embedding.hpp): rows copied in parallel over tokens after every id has
// been range-checked (so a bad id throws before anything is written).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

inline void embedding_impl(Context<Host>& ctx, TensorView<const int32_t, 2, Host> ids,
                           TensorView<const float, 2, Host> weight, TensorView<float, 3, Host> out) {
  const int64_t B = ids.size(0), L = ids.size(1), V = weight.size(0), D = weight.size(1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const int32_t id = ids(b, l);
      BIMAMBA_CHECK(id >= 0 && id < V, "embedding: token id ", id, " at (", b, ", ", l, ") is outside the vocabulary [0, ",
                    V, ")");
    }
  ctx.parallel_for(B * L, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / L, l = t % L;
      std::memcpy(&out(b, l, 0), &weight(ids(b, l), 0), size_t(D) * sizeof(float));
    }
  }, grain(D));
}

}  // namespace bimamba::detail
