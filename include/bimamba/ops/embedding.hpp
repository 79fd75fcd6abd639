// embedding: out[b, l, :] = weight[ids[b, l], :].
//   ids    (B, L) int32        token ids, each in [0, V)
//   weight (V, D)              embedding table (also the tied LM head)
//   out    (B, L, D)           contiguous rows of D
// An id outside [0, V) throws InvalidArgument naming the id, its position and V (the check is part of every
// backend's implementation, since only it can read the ids).
#pragma once

#include <cstdint>

#include "common.hpp"
#include "host/embedding.hpp"
#if defined(__CUDACC__) && __has_include("cuda/embedding.cuh")
#include "cuda/embedding.cuh"
#endif

namespace bimamba {

template <class Backend>
void embedding(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, View<const float, 2, Backend> weight,
               View<float, 3, Backend> out) {
  check_shape(out, {ids.size(0), ids.size(1), weight.size(1)}, "embedding: out");
  BIMAMBA_CHECK(weight.stride(1) == 1 && out.stride(2) == 1, "embedding: weight and out need unit inner stride");
  detail::embedding_impl(ctx, ids, weight, out);
}

}  // namespace bimamba
