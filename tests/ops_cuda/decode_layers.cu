// mamba2_decode_layers (ops/mamba2_decode_layers.hpp): the persistent Cuda kernel against the Host op (the
// per-block composition of binary_linear_rms_normed, mamba2_decode_step, binary_linear_rms_normed_accumulate)
// on random packed blocks, three tokens in a row (the states carry over), at shapes that take each of its paths:
//   D = 96, E = 192: rows of 3 and 6 sign words (word copies instead of bulk copies), N = 12 (lanes idle);
//   D = 256, E = 512, N = 128: bulk copies, a full warp along N;
//   66 tiny blocks: two launches (64 blocks per launch), every SM but a few without rows;
//   the Bi-Mamba-2.7B block (D = 2560, E = 5120, N = 128, H = 80).
// Each at several grid sizes (max_blocks: 1 block owns every row; 3 and 5: rows per block not a multiple of
// the 16 warps; 0: one block per SM) where a block's share fits in shared memory.
//
// Tolerance: relative L2 < 1e-5 on the residual stream and the SSM states (both sides float32; the kernel
// sums the FBI products through 4-column table entries and per-block partials, the host in other orders:
// ~n u |terms| per sum with u = 6e-8, ~1e-6 relative here). The conv state holds in_proj outputs: the same
// bound.
// The kernel is deterministic for a given grid: two runs from the same state give the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include <bimamba/cuda.hpp>
#include <bimamba/ops/mamba2_decode_layers.hpp>
#include <bimamba/tensor/copy.hpp>

#include <device_support.hpp>

namespace bimamba::test {
namespace {

constexpr double kTol = 1e-5;

struct Shape {
  int64_t D, P, H, N, layers;
};

// One block's tensors on a backend.
template <class Backend>
struct BlockTensors {
  Tensor<float, 1, Backend> norm_w, in_alpha, in_beta, conv_b, dt_bias, a_log, d, gn_w, out_alpha, out_beta;
  Tensor<float, 2, Backend> conv_w;
  BitTensor<uint32_t, Backend> in_bits, out_bits;
  Tensor<float, 3, Backend> conv;
  Tensor<float, 4, Backend> ssm;

  Mamba2BlockDecodeWeights<Backend> weights(const Shape& s) {
    const Mamba2DecodeWeights<Backend> step{conv_w.cview(), conv_b.cview(), dt_bias.cview(), a_log.cview(), d.cview(),
                                            gn_w.cview(), s.H, s.P, 1, s.N, 1e-5f, 0.0f, 0.5f};
    return {norm_w.cview(), 1e-5f, in_bits.cview(), in_alpha.cview(), in_beta.cview(), step, out_bits.cview(),
            out_alpha.cview(), out_beta.cview(), conv.view(), ssm.view()};
  }
};

BlockTensors<Host> random_block(const Shape& s, uint64_t seed) {
  const int64_t E = s.H * s.P, C = E + 2 * s.N, R = E + C + s.H, K = 4;
  const float in_scale = 1.0f / std::sqrt(float(s.D)), out_scale = 1.0f / std::sqrt(float(E));
  BlockTensors<Host> b{rand_host<1>({s.D}, seed + 1, 0.5f, 1.5f),
                       rand_host<1>({s.D}, seed + 2, 0.5f * in_scale, 1.5f * in_scale),
                       rand_host<1>({s.D}, seed + 3, -0.2f * in_scale, 0.2f * in_scale),
                       rand_host<1>({C}, seed + 4),
                       rand_host<1>({s.H}, seed + 5, -3.0f, 0.0f),
                       rand_host<1>({s.H}, seed + 6, 0.0f, 2.0f),
                       rand_host<1>({s.H}, seed + 7, 0.5f, 1.5f),
                       rand_host<1>({E}, seed + 8, 0.5f, 1.5f),
                       rand_host<1>({E}, seed + 9, 0.5f * out_scale, 1.5f * out_scale),
                       rand_host<1>({E}, seed + 10, -0.2f * out_scale, 0.2f * out_scale),
                       rand_host<2>({C, K}, seed + 11, -0.5f, 0.5f),
                       BitTensor<uint32_t, Host>(R, s.D),
                       BitTensor<uint32_t, Host>(s.D, E),
                       rand_host<3>({1, C, K}, seed + 12),
                       rand_host<4>({1, s.H, s.P, s.N}, seed + 13)};
  pack_signs<uint32_t>(rand_host<2>({R, s.D}, seed + 14).cview(), b.in_bits.view());
  pack_signs<uint32_t>(rand_host<2>({s.D, E}, seed + 15).cview(), b.out_bits.view());
  return b;
}

BlockTensors<Cuda> to_device(const BlockTensors<Host>& h) {
  return {to<Cuda>(h.norm_w),   to<Cuda>(h.in_alpha), to<Cuda>(h.in_beta),   to<Cuda>(h.conv_b),
          to<Cuda>(h.dt_bias),  to<Cuda>(h.a_log),    to<Cuda>(h.d),         to<Cuda>(h.gn_w),
          to<Cuda>(h.out_alpha), to<Cuda>(h.out_beta), to<Cuda>(h.conv_w),   to<Cuda>(h.in_bits),
          to<Cuda>(h.out_bits), to<Cuda>(h.conv),     to<Cuda>(h.ssm)};
}

// `layers` random blocks on both backends (seeded from `seed`) and their weight views.
struct Stack {
  std::vector<BlockTensors<Host>> host;
  std::vector<BlockTensors<Cuda>> dev;
  std::vector<Mamba2BlockDecodeWeights<Host>> hw;
  std::vector<Mamba2BlockDecodeWeights<Cuda>> dw;
  Stack(const Shape& s, uint64_t seed) {
    for (int64_t l = 0; l < s.layers; ++l) {
      host.push_back(random_block(s, seed + 20 * uint64_t(l)));
      dev.push_back(to_device(host.back()));
    }
    for (int64_t l = 0; l < s.layers; ++l) hw.push_back(host[size_t(l)].weights(s)), dw.push_back(dev[size_t(l)].weights(s));
  }
};

using DecodeLayers = DeviceVsHost;

TEST_F(DecodeLayers, PersistentKernelMatchesTheHostCompositionOverTokens) {
  const Shape shapes[] = {{96, 16, 12, 12, 3}, {256, 64, 8, 128, 2}, {32, 8, 8, 8, 66}, {2560, 64, 80, 128, 2}};
  for (const Shape& s : shapes)
    for (int max_blocks : {0, 1, 3, 5}) {
      // A block holds its rows of signs and state in shared memory: 1 block cannot hold D = 256's 512 state rows
      // (256 KB), nor fewer than one block per SM a 2.7B layer.
      if ((s.D == 2560 && max_blocks != 0) || (s.D == 256 && max_blocks == 1)) continue;
      Stack stack(s, 1000);
      auto& host = stack.host;
      auto& dev = stack.dev;
      const auto& hw = stack.hw;
      const auto& dw = stack.dw;
      const std::string at = "D=" + std::to_string(s.D) + " layers " + std::to_string(s.layers) + " max_blocks " +
                             std::to_string(max_blocks);
      for (int token = 0; token < 3; ++token) {
        auto h = rand_host<2>({1, s.D}, 50 + uint64_t(token), -2.0f, 2.0f);
        auto hd = to<Cuda>(h);
        ASSERT_TRUE(mamba2_decode_layers_persistent(*dev_, dw, hd.cview(), max_blocks)) << at;
        // Determinism: the same step from copies of the state, first.
        std::vector<Tensor<float, 4, Cuda>> ssm_before;
        std::vector<Tensor<float, 3, Cuda>> conv_before;
        for (auto& b : dev) ssm_before.push_back(to<Cuda>(to<Host>(b.ssm))), conv_before.push_back(to<Cuda>(to<Host>(b.conv)));
        auto once = to<Cuda>(h);
        mamba2_decode_layers(*dev_, dw, once.view(), max_blocks);
        const auto first = to_vector(once);
        for (size_t l = 0; l < dev.size(); ++l) {
          copy(ssm_before[l].cview(), dev[l].ssm.view());
          copy(conv_before[l].cview(), dev[l].conv.view());
        }
        mamba2_decode_layers(host_, hw, h.view());
        mamba2_decode_layers(*dev_, dw, hd.view(), max_blocks);
        EXPECT_EQ(to_vector(hd), first) << at << " token " << token << ": not deterministic";
        EXPECT_LT(rel(hd, h), kTol) << at << " token " << token;
        for (size_t l = 0; l < dev.size(); ++l) {
          EXPECT_LT(rel(dev[l].ssm, host[l].ssm), kTol) << at << " token " << token << " block " << l;
          EXPECT_LT(rel(dev[l].conv, host[l].conv), kTol) << at << " token " << token << " block " << l;
        }
      }
    }
}

// Shapes it does not take run as the composition on Cuda too, with the same result.
TEST_F(DecodeLayers, ShapesOutsideTheKernelFallBackToTheComposition) {
  const Shape s{64, 8, 8, 6, 2};  // N = 6: not a multiple of 4
  Stack stack(s, 500);
  const auto& hw = stack.hw;
  const auto& dw = stack.dw;
  auto h = rand_host<2>({1, s.D}, 7, -2.0f, 2.0f);
  auto hd = to<Cuda>(h);
  EXPECT_FALSE(mamba2_decode_layers_persistent(*dev_, dw, hd.cview()));
  mamba2_decode_layers(host_, hw, h.view());
  mamba2_decode_layers(*dev_, dw, hd.view());
  EXPECT_LT(rel(hd, h), kTol);
}

TEST_F(DecodeLayers, RefusesMismatchedBlocks) {
  const Shape s{64, 8, 8, 8, 1};
  auto host = random_block(s, 9);
  auto dev = to_device(host);
  std::vector<Mamba2BlockDecodeWeights<Cuda>> dw{dev.weights(s)};
  Tensor<float, 2, Cuda> wrong({1, 65});
  EXPECT_THROW(mamba2_decode_layers(*dev_, dw, wrong.view()), InvalidArgument);
}

// The kernel's shared-memory layout holds every block's rows, for every grid size (host only: no device needed).
// Each block takes from BlockRows its in_proj rows (its B / C share, then the z, x and dt rows of its state rows
// and heads), its out_proj / residual rows and its state rows; layers_smem sizes each region for the largest
// share. The regions follow one another without overlap, and those read as float4 or filled by bulk copies start
// on 16 bytes.
TEST(DecodeLayersLayout, EveryBlocksRowsFitTheirSharedMemory) {
  struct LayoutShape {
    int D, P, H, N, K;
  };
  const LayoutShape shapes[] = {{96, 16, 12, 12, 4},   {256, 64, 8, 128, 4}, {32, 8, 8, 8, 4},
                                {1536, 64, 48, 128, 4}, {2560, 64, 80, 128, 4}, {100, 3, 7, 4, 2}};
  for (const LayoutShape& sh : shapes)
    for (int nb : {1, 2, 3, 5, 7, 64, 114, 132})
      for (int pitch : {0, 256}) {  // the plan's two choices of Wp: W rounded up to 32, or 256 (rows up to 256 words)
        detail::gpu::DecodeLayersArgs a;
        a.D = sh.D, a.P = sh.P, a.H = sh.H, a.N = sh.N, a.K = sh.K, a.E = sh.H * sh.P, a.C = a.E + 2 * sh.N;
        a.Wd = (a.D + 31) / 32, a.We = (a.E + 31) / 32;
        if (pitch > 0 && std::max(a.Wd, a.We) > pitch) continue;
        a.Wp = pitch > 0 ? pitch : (std::max(a.Wd, a.We) + 31) / 32 * 32;
        const detail::gpu::DecodeLayersSmem lay = detail::gpu::layers_smem(a, nb);
        const std::string at = "D=" + std::to_string(sh.D) + " blocks " + std::to_string(nb) + " pitch " +
                               std::to_string(a.Wp);
        int64_t rows_in = 0, rows_state = 0, rows_out = 0, heads = 0, channels = 0, all_state = 0, all_bc = 0;
        for (int b = 0; b < nb; ++b) {
          const detail::gpu::BlockRows rows(a, nb, b);
          rows_in = std::max<int64_t>(rows_in, rows.in_rows());
          rows_state = std::max<int64_t>(rows_state, rows.state());
          rows_out = std::max<int64_t>(rows_out, rows.o1 - rows.o0);
          heads = std::max<int64_t>(heads, rows.heads);
          channels = std::max<int64_t>(channels, rows.bc());
          all_state += rows.state(), all_bc += rows.bc();
          if (rows.state() > 0) EXPECT_EQ(rows.h0 + rows.heads - 1, (rows.s1 - 1) / sh.P) << at << " block " << b;
        }
        EXPECT_EQ(all_state, int64_t(sh.H) * sh.P) << at;  // every state row and B / C channel has one owner
        EXPECT_EQ(all_bc, 2 * sh.N) << at;
        EXPECT_LE(channels, (2 * sh.N + nb - 1) / nb) << at;
        // Each GEMV phase's table: a pitch that holds its row's words, a multiple of 32 (lanes on distinct banks).
        for (const int W : {a.Wd, a.We}) {
          const int pitch = detail::gpu::table_pitch(W, a.Wp);
          EXPECT_GE(pitch, W) << at;
          EXPECT_EQ(pitch % 32, 0) << at;
        }
        const int64_t table = 128 * int64_t(std::max(detail::gpu::table_pitch(a.Wd, a.Wp),
                                                     detail::gpu::table_pitch(a.We, a.Wp)));
        // Every region (offset, floats it must hold, whether it must start on 16 bytes), none overlapping another.
        const int64_t n2 = 2 * sh.N, K = sh.K;
        struct Region {
          int64_t offset, floats;
          bool aligned;
        };
        std::vector<Region> regions = {
            {lay.table, table, true},             {lay.stage, 32 * (std::max(a.Wd, a.We) + 1), true},
            {lay.sin, rows_in * a.Wd, true},      {lay.sout, rows_out * a.We, true},
            {lay.sst, rows_state * sh.N, true},   {lay.bc, n2, true},
            {lay.bc_w, n2 * K, false},            {lay.bc_b, n2, false},
            {lay.bc_s, n2 * K, false},            {lay.bc_in, n2, false},
            {lay.row_w, rows_state * K, false},   {lay.row_b, rows_state, false},
            {lay.row_s, rows_state * K, false},   {lay.gn, rows_state, false},
            {lay.alpha, rows_state, false},       {lay.beta, rows_state, false},
            {lay.dt_bias, heads, false},          {lay.a_log, heads, false},
            {lay.d_skip, heads, false},           {lay.next_w, rows_out, false},
            {lay.next_alpha, rows_out, false},    {lay.next_beta, rows_out, false},
            {lay.res, rows_out, false},           {lay.z, rows_state, false},
            {lay.xin, rows_state, false},         {lay.dt, heads, false},
            {lay.decay, heads, false},            {lay.pairs, 2 * int64_t(nb), false},
            {lay.part, rows_out * detail::gpu::slices_per_row(a.We), false}};
        for (const Region& r : regions) {
          if (r.aligned) EXPECT_EQ(r.offset % 4, 0) << at << " region at " << r.offset;
          EXPECT_LE(4 * (r.offset + r.floats), lay.total) << at << " region at " << r.offset;
        }
        std::sort(regions.begin(), regions.end(), [](const Region& x, const Region& y) { return x.offset < y.offset; });
        for (size_t k = 1; k < regions.size(); ++k)
          EXPECT_LE(regions[k - 1].offset + regions[k - 1].floats, regions[k].offset) << at << " region " << k;
      }
}

}  // namespace
}  // namespace bimamba::test
