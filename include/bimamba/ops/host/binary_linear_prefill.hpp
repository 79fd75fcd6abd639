// Host packed FBI-Linear on TiledSigns for many tokens (prefill): the same arithmetic as the shuffle kernel
// of binary_linear_shuffle.hpp, in a loop order that keeps its working set in the caches.
//
//   y[t, i] = sum_w d_w(t) * (int16 block sums of s[i, .] q(t)) + b[t]      (binary_linear_shuffle.hpp)
//
// Every (tile, token) pair is computed by shuffle::tile_best on tables built by shuffle::build_tables,
// exactly as in the row-parallel kernel, so the results are bit-identical to it (tested): the
// quantization bound sum_j d_w(j) / 2 and everything said there hold unchanged.
//
// Why another loop order: the row-parallel kernel builds the tables of all T tokens first, then walks the
// tiles, each against every token. Tables cost 12.5 bytes per input column and token (in = 1536: 12.5 KiB
// per token, 6.3 MiB for T = 512), so beyond a few dozen tokens every tile re-reads all of them from L3
// and the shuffle ports starve. Here the tokens are cut into blocks whose tables fit in half of a core's L2
// (kTableBytes); per block: build its tables, then groups of kTileGroup tiles against every token of the
// block (a token's tables stay in L1 while the group's tiles pass). Weights are re-read once per block
// (1.2 MiB for the 780M in_proj, from L3).
//
// Threads: the tokens are split into one contiguous range per worker, each with its own tables (in its
// own core's L2) and one parallel region per call; no synchronization inside.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"
#include "binary_linear_shuffle.hpp"

namespace bimamba::detail::prefill {

inline constexpr int64_t kTableBytes = 192 * 1024;  // tables of one token block: about half of a Zen 3 / Xeon L2
inline constexpr int64_t kMaxBlockTokens = 32;
// Tiles taken against one token before the next (their bytes, 6-12 KiB each at the 780M shapes, stay in L2
// while the token's tables stay in L1). Measured (780M in_proj, T = 512, one thread, CPU time): 1 tile
// 51-68 ms, 8 tiles 49 ms, 16 tiles 49 ms; token blocks of 8, 16 or 32 within noise.
inline constexpr int64_t kTileGroup = 8;
inline constexpr int64_t kMinTokens = 16;  // binary_linear on TiledSigns takes this path from here on

// Tokens per block for rows of `words` sign words: tables (8 words x 32 bytes) + scales + a (32 words floats).
inline int64_t block_tokens(int64_t words) {
  const int64_t per_token = words * (8 * 32 + 4 + 4 * 32);
  return std::clamp<int64_t>(kTableBytes / per_token, 1, kMaxBlockTokens);
}

}  // namespace bimamba::detail::prefill

namespace bimamba::detail {

inline void binary_linear_prefill_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x,  // (T, in)
                                       const TiledSigns& signs,                                  // (out, in)
                                       TensorView<const float, 1, Host> alpha,                   // (in)
                                       TensorView<const float, 1, Host> beta,                    // (in)
                                       TensorView<float, 2, Host> y) {                           // (T, out)
  constexpr int R = TiledSigns::kTileRows;
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows(), words = signs.words_per_row();
  const int64_t cols = 32 * words, groups = 8 * words, tiles = signs.tiles();
  const int64_t TB = prefill::block_tokens(words), GT = prefill::kTileGroup;
  // One worker per thread, but at least a block of tokens each.
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(ctx.threads(), (T + TB - 1) / TB));
  Workspace<Host>& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  // Per worker, per token of a block: a (cols), tables (groups, 2, 16) bytes, scales (words), b.
  float* a_all = ws.take<float>(size_t(workers * TB * cols));
  uint8_t* planes_all = ws.take<uint8_t>(size_t(workers * TB * groups * 32));
  float* scale_all = ws.take<float>(size_t(workers * TB * words));
  float* b_all = ws.take<float>(size_t(workers * TB));

  auto work = [&](int64_t worker, int64_t t_begin, int64_t t_end) {
    float* a = a_all + worker * TB * cols;
    uint8_t* planes = planes_all + worker * TB * groups * 32;
    float* scale = scale_all + worker * TB * words;
    float* b = b_all + worker * TB;
    alignas(64) float acc[R];
    for (int64_t t0 = t_begin; t0 < t_end; t0 += TB) {
      const int64_t tb = std::min(TB, t_end - t0);
      for (int64_t l = 0; l < tb; ++l)  // a, b and the tables of token t0 + l (as the row-parallel kernel)
        b[l] = shuffle::prepare_token(x.data() + (t0 + l) * x.stride(0), in, alpha, beta, words, a + l * cols,
                                      planes + l * groups * 32, scale + l * words);
      for (int64_t r0 = 0; r0 < tiles; r0 += GT) {
        for (int64_t l = 0; l < tb; ++l) {
          const shuffle::TokenTables tt{planes + l * groups * 32, scale + l * words};
          for (int64_t r = r0; r < std::min(tiles, r0 + GT); ++r) {
            const int64_t rows = std::min<int64_t>(R, out - r * R);
            shuffle::tile_best(signs.tile(r), words, tt, acc);
            float* yt = y.data() + (t0 + l) * y.stride(0) + r * R;
            for (int64_t i = 0; i < rows; ++i) yt[i] = acc[i] + b[l];
          }
        }
      }
    }
  };
  if (workers == 1) {
    work(0, 0, T);
    return;
  }
  ctx.parallel_for(workers, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) work(c, T * c / workers, T * (c + 1) / workers);
  });
}

}  // namespace bimamba::detail
