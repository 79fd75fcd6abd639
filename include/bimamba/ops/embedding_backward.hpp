// Backward of the embedding lookup out[b, l] = weight[ids[b, l]] (ops/embedding.hpp): a scatter-add,
//   dweight[v] = sum over positions (b, l) with ids[b, l] = v of dout[b, l]
// Rows of tokens that do not occur get 0 (Overwrite) or keep their value (Accumulate). With a tied head the
// model adds the head's dW = dlogits^T h to the same dweight (linear_backward with GradientMode::Accumulate).
// ids (B, L) int32 in [0, V) (checked, InvalidArgument naming the id); dout (B, L, D); dweight (V, D).
#pragma once

#include "common.hpp"
#include "host/embedding_backward.hpp"
#if defined(__CUDACC__) && __has_include("cuda/embedding_backward.cuh")
#include "cuda/embedding_backward.cuh"
#endif

namespace bimamba {

template <class Backend>
void embedding_backward(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, View<const float, 3, Backend> dout,
                        View<float, 2, Backend> dweight, GradientMode mode) {
  check_shape(dout, {ids.size(0), ids.size(1), dweight.size(1)}, "embedding_backward: dout");
  detail::embedding_backward_impl(ctx, ids, dout, dweight, mode);
}

}  // namespace bimamba
