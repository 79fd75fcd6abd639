// Host FBI-Linear forward: y (T, out) = S (alpha ⊙ x) + (beta · x) 1 (see ops/binary_linear.hpp).
//
// Per token t: a = alpha ⊙ x[t] (zero beyond in, so the zero padding bits multiply zeros) and b = beta · x[t];
// each row i then sums +-a_j by its sign bits: y[t, i] = sum_j (bit ? a_j : -a_j) + b.
// Rows are split over ctx.parallel_for; a comes from ctx.workspace().
#pragma once

#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/bit_tensor.hpp"
#include "../../tensor/tensor_view.hpp"

namespace bimamba::detail {

inline void binary_linear_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,  // (T, in)
                               BitTensorView<const uint32_t, Host> signs,                // (out, in)
                               TensorView<const float, 1, Host> alpha,                   // (in)
                               TensorView<const float, 1, Host> beta,                    // (in)
                               TensorView<float, 2, Host> y) {                           // (T, out)
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows(), words = signs.words_per_row();
  WorkspaceScope<Host> scope(ctx.workspace());
  float* a = ctx.workspace().take<float>(size_t(words * 32));  // (words * 32) alpha ⊙ x, zero padded
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x.data() + t * x.stride(0);
    float b = 0;
    for (int64_t j = 0; j < in; ++j) {
      a[j] = alpha(j) * xt[j];
      b += beta(j) * xt[j];
    }
    for (int64_t j = in; j < words * 32; ++j) a[j] = 0;
    float* yt = y.data() + t * y.stride(0);
    ctx.parallel_for(out, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const uint32_t* row = signs.row(i);
        float acc = 0;
        for (int64_t k = 0; k < words; ++k)
          for (int bit = 0; bit < 32; ++bit) acc += (row[k] >> bit) & 1u ? a[k * 32 + bit] : -a[k * 32 + bit];
        yt[i] = acc + b;
      }
    });
  }
}

}  // namespace bimamba::detail
