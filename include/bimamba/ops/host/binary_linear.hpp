// Host FBI-Linear forward on the standard packed layout: y (T, out) = S (alpha ⊙ x) + (beta · x) 1
// (see ops/binary_linear.hpp), with the fp32 lookup-table kernels of binary_linear_lut.hpp.
//
// Tokens are taken in blocks of 8: a block of one token uses the g = 8 scalar tables (decode), larger blocks
// the g = 4 tables with 8 token lanes per vector add (small-batch GEMM: the tables are reused across all
// rows, each row's words are read once per block). Per block: build the tables in ctx.workspace(), split
// over the workers by column groups, then the output rows over the same workers. b = beta · x is summed
// in double.
//
// bf16 activations: each block of tokens is converted (exactly) to float in a workspace buffer, runs through the
// float kernel into fp32 scratch, and is rounded once into y; blocks of kBlockTokens are the kernel's own, so y
// is the float kernel's result on float(x), rounded to bf16.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../../core/context.hpp"
#include "../../core/dtype.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/bit_tensor.hpp"
#include "../../tensor/tensor_view.hpp"
#include "binary_linear_lut.hpp"

namespace bimamba::detail {

inline void binary_linear_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,  // (T, in)
                               BitTensorView<const uint32_t, Host> signs,                // (out, in)
                               TensorView<const float, 1, Host> alpha,                   // (in)
                               TensorView<const float, 1, Host> beta,                    // (in)
                               TensorView<float, 2, Host> y) {                           // (T, out)
  constexpr int B = lut::kBlockTokens;
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows(), words = signs.words_per_row();
  const int64_t cols = 32 * words;  // in rounded up to whole words
  constexpr int64_t kRowsPerThread = 64;
  Workspace<Host>& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  float* at = ws.take<float>(size_t(cols * B));        // (cols, B) alpha ⊙ x, token lanes innermost
  float* a = ws.take<float>(size_t(cols));                  // (cols) lane 0 of at, dense
  float* tab = ws.take<float>(size_t(cols / 4 * 16 * B));  // (cols / 4, 16, B) or (cols / 8, 256) tables
  float b[B];
  // Every parallel region (table building, rows) uses the same number of workers, one chunk of [0, n) each:
  // OpenMP runtimes are slow to alternate team sizes between consecutive regions (docs/kernels.md).
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(ctx.threads(), out / kRowsPerThread));
  auto split = [&](int64_t n, auto&& body) {
    if (workers == 1) {
      if (n > 0) body(int64_t(0), n);
      return;
    }
    ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        if (n * c / workers < n * (c + 1) / workers) body(n * c / workers, n * (c + 1) / workers);
    });
  };

  for (int64_t t0 = 0; t0 < T; t0 += B) {
    const int tb = int(std::min<int64_t>(B, T - t0));
    std::memset(at, 0, sizeof(float) * size_t(cols * B));
    for (int l = 0; l < tb; ++l) {
      const float* xt = x.data() + (t0 + l) * x.stride(0);
      double bsum = 0;
      for (int64_t j = 0; j < in; ++j) {
        at[j * B + l] = alpha(j) * xt[j];
        bsum += double(beta(j)) * double(xt[j]);
      }
      b[l] = float(bsum);
    }
    if (tb == 1) {
      for (int64_t j = 0; j < cols; ++j) a[j] = at[j * B];
      split(cols / 8, [&](int64_t lo, int64_t hi) { lut::build_lut8(a + 8 * lo, hi - lo, tab + 256 * lo); });
      float* yt = y.data() + t0 * y.stride(0);
      split(out, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) yt[i] = lut::lut8_row(signs.row(i), words, tab) + b[0];
      });
    } else {
      split(cols / 4, [&](int64_t lo, int64_t hi) { lut::build_lut4x8(at + 4 * B * lo, hi - lo, tab + 16 * B * lo); });
      split(out, [&](int64_t begin, int64_t end) {
        alignas(32) float acc[B];
        for (int64_t i = begin; i < end; ++i) {
          lut::lut4x8_row(signs.row(i), words, tab, acc);
          for (int l = 0; l < tb; ++l) y(t0 + l, i) = acc[l] + b[l];
        }
      });
    }
  }
}

inline void binary_linear_impl(Context<Host>& ctx, TensorView<const bfloat16, 2, Host> x,  // (T, in)
                               BitTensorView<const uint32_t, Host> signs,                   // (out, in)
                               TensorView<const float, 1, Host> alpha,                      // (in)
                               TensorView<const float, 1, Host> beta,                       // (in)
                               TensorView<bfloat16, 2, Host> y) {                           // (T, out)
  constexpr int64_t B = lut::kBlockTokens;
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows();
  Workspace<Host>& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  float* xf = ws.take<float>(size_t(B * in));   // (B, in) float(x) of the block
  float* yf = ws.take<float>(size_t(B * out));  // (B, out) the block's fp32 result
  for (int64_t t0 = 0; t0 < T; t0 += B) {
    const int64_t tb = std::min<int64_t>(B, T - t0);
    for (int64_t l = 0; l < tb; ++l)
      for (int64_t j = 0; j < in; ++j) xf[l * in + j] = float(x(t0 + l, j));
    binary_linear_impl(ctx, TensorView<const float, 2, Host>(xf, {tb, in}), signs, alpha, beta,
                       TensorView<float, 2, Host>(yf, {tb, out}));
    for (int64_t l = 0; l < tb; ++l)
      for (int64_t i = 0; i < out; ++i) y(t0 + l, i) = bfloat16(yf[l * out + i]);
  }
}

}  // namespace bimamba::detail
