// Cuda FBI-Linear decode kernel: y = S (alpha ⊙ x) + (beta · x) 1 for T <= kGemvMaxTokens tokens, built for
// latency (one launch of a few microseconds at most, so every fixed cost counts).
//
// Math: binary_mma.cuh. One scale per token over all of K, m_t = max_j |alpha_j x_tj|, so the K-ranges of a
// row sum exactly, in integers:
//   y_ti = (2 R_ti - Q_t) m_t / 2^22 + beta . x_t
// rounding only in the quantization (|error| <= m_t 2^-23 per column) and in the final conversion.
//
// Work: a block owns 16 * mtiles rows and is `mtiles` x `ksplit` warps; warp (mw, kw) takes rows 16 mw .. + 16
// of the block against the K-range of iterations kw * ips .. + ips (512 columns each). The block
//   0. starts one bulk copy of its rows of sign words into shared memory (sm_90, bulk_copy.cuh: the copy
//      engine, not the load/store units, so the activation loads below do not queue behind the weights;
//      elsewhere every thread loads its share), before waiting for the previous kernel (the weights are
//      constant: launch.cuh, wait_for_previous_kernel);
//   1. stages a'_tj = alpha'_j x_tj in shared memory with one round of loads and reduces m_t, beta' . x_t and
//      (input norm) sum_j x_tj^2 per token (fixed order: deterministic);
//   2. quantizes a' into the planes, 3 plane rows per token (a lane of mma column n >= 6 or of a token past T
//      uses a zero fragment), and reduces Q_t;
//   3. waits for its sign words; each warp runs its ips iterations of mma (a chain of 16 ips steps);
//   4. stores the warps' int32 plane sums; the block adds the K-ranges of each row in int64 and writes y.
// No split-K across blocks, no arrival counters, no atomics on global memory.
//
// Two fusions for the decode step (GemvFusion; ops/binary_linear_fused.hpp):
//   input RMSNorm: x_t is the un-normalized row and the kernel computes binary_linear(x_t / rms(x_t) ⊙ w):
//     with alpha' = alpha ⊙ w, beta' = beta ⊙ w and r_t = 1 / sqrt(mean x_t^2 + eps), y_t = r_t (S (alpha' ⊙ x_t)
//     + beta' . x_t 1), so the sum of squares joins the prologue's reductions and r_t scales the output;
//   accumulate: y += the result (out_proj writing the residual stream: each row has one owner block).
// Without them alpha' = alpha, beta' = beta, r_t = 1.
//
// x and y are float or bfloat16 (the kernel's template argument Act; activation_io.cuh): x is read as float in
// step 1, y written (rounded for bf16) in step 4; all else is the same fp32 and integer arithmetic.
//
// The launcher (binary_linear_impl) uses it when T <= kGemvMaxTokens and its shared memory fits; config_gemv
// picks ips / ksplit / mtiles (bench_cuda_gemv times other choices through the same entry point).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../../core/cuda_runtime.hpp"
#include "../../tensor/bit_tensor.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"
#include "activation_io.cuh"
#include "binary_mma.cuh"
#include "bulk_copy.cuh"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kGemvMaxTokens = 4;  // 2 mma tiles of 2 tokens
inline constexpr int kGemvMaxWarps = 16;
inline constexpr int kGemvStaticSmem = 2048;  // bound on the kernel's static shared memory (ptxas: 1504 bytes)

struct GemvFusion {
  TensorView<const float, 1, Cuda> norm_weight;  // (in), or empty: no input norm
  float eps = 0.0f;
  bool accumulate = false;
};

struct GemvConfig {
  int ips = 1;     // iterations (512 columns) per warp
  int ksplit = 1;  // warps along K
  int mtiles = 1;  // warps along rows (16-row tiles) per block
};

template <class Act>  // the activations' stored type: float or bfloat16 (activation_io.cuh)
struct BinaryGemvArgs {
  const Act* x;  // (tokens, in), row stride ldx
  int64_t ldx;
  int tokens;
  int64_t in;
  TensorView<const float, 1, Cuda> alpha, beta;  // (in)
  bool vec4;  // 4-element loads of x, alpha, beta, norm weight: in, ldx % 4 == 0, unit strides, aligned
  SignRows signs;
  bool bulk;  // bulk copy of the sign words: sm_90, wpr % 4 == 0, words 16-byte aligned
  Act* y;     // (tokens, rows), row stride ldy
  int64_t ldy;
  int iters;  // 512-column iterations of a row
  GemvConfig config;
  const float* norm_weight;  // (in), unit stride, or null
  float eps;
  bool accumulate;
};

// Shared memory of a launch, in bytes, in this order: the block's sign words (16 mtiles rows at a stride of wpr
// rounded up to 4 words, plus one iteration of slack read by the last row), a' (tokens x iters * 512 floats),
// the planes (3 rows a token), the warps' int32 accumulators.
struct GemvSmem {
  int words, staged, planes, acc, total;
  __host__ __device__ GemvSmem(int tokens, int64_t wpr, int iters, const GemvConfig& c) {
    const int stride = int((wpr + 3) / 4 * 4), nt = (tokens + 1) / 2;
    words = (16 * c.mtiles * stride + kBlIterCols / 32) * int(sizeof(uint32_t));
    staged = tokens * iters * kBlIterCols * int(sizeof(float));
    planes = (PlaneLayout(iters).bytes(3 * tokens) + 15) / 16 * 16;
    acc = c.ksplit * c.mtiles * 16 * 8 * nt * int(sizeof(int));
    total = words + staged + planes + acc;
  }
};

template <int NT, class Act>
__global__ void __launch_bounds__(kGemvMaxWarps * 32) binary_gemv_kernel(BinaryGemvArgs<Act> a) {
  extern __shared__ __align__(16) unsigned char gemv_shared[];
  constexpr int TT = 2 * NT;
  __shared__ float s_red[3][kGemvMaxWarps][TT];
  __shared__ long long s_qred[kGemvMaxWarps][TT];
  __shared__ float s_scale[TT], s_bias[TT], s_rms[TT];
  __shared__ long long s_q[TT];
  __shared__ uint64_t s_bar;
  __shared__ __align__(16) uint32_t s_zero[32];  // the B fragments of lanes without a column (128 bytes)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5, g = lane >> 2, tig = lane & 3;
  const GemvConfig cfg = a.config;
  const int mw = warp % cfg.mtiles, kw = warp / cfg.mtiles, block_rows = 16 * cfg.mtiles;
  const int64_t wpr = a.signs.wpr, stride = (wpr + 3) / 4 * 4, row0 = int64_t(blockIdx.x) * block_rows;
  const int nrows = int(a.signs.rows - row0 < block_rows ? a.signs.rows - row0 : block_rows);
  const GemvSmem layout_bytes(a.tokens, wpr, a.iters, cfg);
  uint32_t* s_words = reinterpret_cast<uint32_t*>(gemv_shared);                   // (block rows, stride)
  float* s_a = reinterpret_cast<float*>(gemv_shared + layout_bytes.words);         // (tokens, cols)
  unsigned char* planes = gemv_shared + layout_bytes.words + layout_bytes.staged;  // PlaneLayout
  int* s_acc = reinterpret_cast<int*>(planes + layout_bytes.planes);               // (warps, 16, 8 NT)
  const PlaneLayout layout(a.iters);  // plane row 3 t + p: plane p of token t
  const int cols = a.iters * kBlIterCols;

  // 0. The block's sign words, before anything else.
  if (a.bulk) {
    if (tid == 0) {
      bulk_barrier_init(&s_bar);
      bulk_copy_to_shared(s_words, a.signs.words + row0 * wpr, uint32_t(nrows * wpr * sizeof(uint32_t)), &s_bar);
    }
  } else {
    for (int64_t k = tid; k < int64_t(nrows) * wpr; k += blockDim.x)
      s_words[(k / wpr) * stride + k % wpr] = __ldg(a.signs.words + row0 * wpr + k);
  }
  wait_for_previous_kernel();
  allow_next_kernel();

  if (tid < 32) s_zero[tid] = 0u;  // read after the barriers below

  // 1. a'_tj = alpha'_j x_tj into shared memory; m_t = max_j |a'_tj|, beta' . x_t, sum_j x_tj^2.
  const int64_t in = a.in;
  const bool norm = a.norm_weight != nullptr;
  float m[TT], bs[TT], ss[TT];
#pragma unroll
  for (int t = 0; t < TT; ++t) m[t] = bs[t] = ss[t] = 0.0f;
  if (a.vec4) {
#pragma unroll 4
    for (int64_t c = 4 * int64_t(tid); c < in; c += 4 * int64_t(blockDim.x)) {
      float4 al = __ldg(reinterpret_cast<const float4*>(a.alpha.data() + c));
      float4 be = __ldg(reinterpret_cast<const float4*>(a.beta.data() + c));
      if (norm) {
        const float4 w = __ldg(reinterpret_cast<const float4*>(a.norm_weight + c));
        al = make_float4(al.x * w.x, al.y * w.y, al.z * w.z, al.w * w.w);
        be = make_float4(be.x * w.x, be.y * w.y, be.z * w.z, be.w * w.w);
      }
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if (t >= a.tokens) break;
        const float4 xv = load_activation4(a.x + t * a.ldx + c);
        const float4 av = make_float4(al.x * xv.x, al.y * xv.y, al.z * xv.z, al.w * xv.w);
        *reinterpret_cast<float4*>(s_a + t * cols + c) = av;
        m[t] = fmaxf(fmaxf(m[t], fmaxf(fabsf(av.x), fabsf(av.y))), fmaxf(fabsf(av.z), fabsf(av.w)));
        bs[t] += be.x * xv.x + be.y * xv.y + be.z * xv.z + be.w * xv.w;
        ss[t] += xv.x * xv.x + xv.y * xv.y + xv.z * xv.z + xv.w * xv.w;
      }
    }
  } else {
#pragma unroll 4
    for (int64_t c = tid; c < in; c += blockDim.x) {
      const float w = norm ? a.norm_weight[c] : 1.0f, al = a.alpha(c) * w, be = a.beta(c) * w;
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if (t >= a.tokens) break;
        const float xv = load_activation(a.x + t * a.ldx + c), av = al * xv;
        s_a[t * cols + c] = av;
        m[t] = fmaxf(m[t], fabsf(av));
        bs[t] += be * xv;
        ss[t] += xv * xv;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < TT; ++t) {
    if (t >= a.tokens) break;
    float mt = m[t];
    for (int offset = 16; offset > 0; offset >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, offset));
    const float bt = warp_sum(bs[t]), st = warp_sum(ss[t]);
    if (lane == 0) {
      s_red[0][warp][t] = mt;
      s_red[1][warp][t] = bt;
      s_red[2][warp][t] = st;
    }
  }
  __syncthreads();
  if (tid < a.tokens) {
    float mm = 0.0f, bb = 0.0f, sq = 0.0f;
    for (int w = 0; w < warps; ++w) {
      mm = fmaxf(mm, s_red[0][w][tid]);
      bb += s_red[1][w][tid];
      sq += s_red[2][w][tid];
    }
    s_scale[tid] = mm;
    s_bias[tid] = bb;
    s_rms[tid] = norm ? rsqrtf(sq / float(in) + a.eps) : 1.0f;
  }
  __syncthreads();

  // 2. Quantize: each thread fills the 32-bit plane words of columns {c, c+8, c+16, c+24}.
  float qscale[TT];  // 2^22 / m_t, or 0 for a token of zeros (its planes stay zero)
#pragma unroll
  for (int t = 0; t < TT; ++t) qscale[t] = t < a.tokens && s_scale[t] != 0.0f ? 4194304.0f / s_scale[t] : 0.0f;
  long long qsum[TT] = {};
  for (int quad4 = tid; quad4 < cols / 4; quad4 += blockDim.x) {
    const int c = int(unsigned(quad4) / 8 * 32 + unsigned(quad4) % 8);  // first of the four columns
    uint32_t bytes[TT][3] = {};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int j = c + 8 * e;
      if (j >= in) break;
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if (qscale[t] == 0.0f) continue;
        qsum[t] += quantize_to_planes(s_a[t * cols + j], qscale[t], e, bytes[t][0], bytes[t][1], bytes[t][2]);
      }
    }
#pragma unroll
    for (int t = 0; t < TT; ++t) {
      if (t >= a.tokens) break;
#pragma unroll
      for (int p = 0; p < 3; ++p) *reinterpret_cast<uint32_t*>(planes + layout.offset(3 * t + p, c)) = bytes[t][p];
    }
  }
#pragma unroll
  for (int t = 0; t < TT; ++t) {
    if (t >= a.tokens) break;
    long long q = qsum[t];
    for (int offset = 16; offset > 0; offset >>= 1) q += __shfl_xor_sync(0xffffffffu, q, offset);
    if (lane == 0) s_qred[warp][t] = q;
  }
  __syncthreads();
  if (tid < a.tokens) {
    long long q = 0;
    for (int w = 0; w < warps; ++w) q += s_qred[w][tid];
    s_q[tid] = q;
  }

  // 3. The warp's 16 rows against its K-range, once the sign words have landed. Lane (g, tig) supplies
  //    B column g: plane g % 3 of token 2 nt + g / 3, or zeros (s_zero) for g >= 6 and tokens past T.
  if (a.bulk) bulk_copy_wait(&s_bar);
  int acc[NT][4] = {};
  const uint32_t* rows_g = s_words + (16 * mw + g) * stride;
  bool lane_has_column[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) lane_has_column[nt] = g < 6 && 2 * nt + g / 3 < a.tokens;
  for (int d = 0; d < cfg.ips; ++d) {
    const int it = kw * cfg.ips + d;
    if (it >= a.iters) break;
    const int w = it * (kBlIterCols / 32) + tig * 4;
    const uint4 u = *reinterpret_cast<const uint4*>(rows_g + w);
    const uint4 v = *reinterpret_cast<const uint4*>(rows_g + 8 * stride + w);
    const unsigned char* b_lane[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      b_lane[nt] = lane_has_column[nt] ? planes + layout.lane_base(3 * (2 * nt + g / 3) + g % 3, it, tig)
                                       : reinterpret_cast<const unsigned char*>(s_zero);
    mma_iteration<NT>(acc, u, v, b_lane);
  }

  // 4. acc columns n = 2 tig + {0, 1} of rows g and g + 8; the block adds the K-ranges in order.
  int* mine = s_acc + warp * 16 * 8 * NT;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mine[g * 8 * NT + nt * 8 + 2 * tig] = acc[nt][0];
    mine[g * 8 * NT + nt * 8 + 2 * tig + 1] = acc[nt][1];
    mine[(g + 8) * 8 * NT + nt * 8 + 2 * tig] = acc[nt][2];
    mine[(g + 8) * 8 * NT + nt * 8 + 2 * tig + 1] = acc[nt][3];
  }
  __syncthreads();
  for (int k = tid; k < block_rows * a.tokens; k += blockDim.x) {
    const int t = k / block_rows, r = k % block_rows;
    if (r >= nrows) continue;
    long long R = 0;
    for (int ks = 0; ks < cfg.ksplit; ++ks) {
      const int* p = s_acc + (ks * cfg.mtiles + r / 16) * 16 * 8 * NT + (r % 16) * 8 * NT + (t / 2) * 8 + (t % 2) * 3;
      R += 65536ll * p[2] + 256ll * p[1] + p[0];
    }
    const float value = s_rms[t] * (float(double(2 * R - s_q[t]) * (double(s_scale[t]) / 4194304.0)) + s_bias[t]);
    Act* out = a.y + t * a.ldy + row0 + r;
    store_activation(out, a.accumulate ? load_activation(out) + value : value);
  }
}

// A block shape for `rows` x (iters * 512) on `sms` multiprocessors (`smem` bytes of dynamic shared memory): one iteration per warp up to 16 of them
// (the shortest mma chains), then as many 16-row tiles per block (at most 16 warps) as keep at least one block
// per SM; shared memory bounds it too. Measured on the H100 (bench/RESULTS_CUDA.md, BM_binary_gemv_config): more
// warps per block and fewer blocks were faster at both 2.7B shapes (in_proj 13.8 us at 5 warps x 661 blocks,
// 8.8 us at 15 x 221; out_proj 12.1 us at 5 x 160, 9.0 us at 10 x 160).
inline GemvConfig config_gemv(int tokens, int64_t rows, int64_t wpr, int iters, int sms, int smem) {
  GemvConfig c;
  c.ips = (iters + kGemvMaxWarps - 1) / kGemvMaxWarps;
  c.ksplit = (iters + c.ips - 1) / c.ips;
  const int64_t tiles = (rows + 15) / 16;
  while ((c.mtiles + 1) * c.ksplit <= kGemvMaxWarps && (tiles + c.mtiles) / (c.mtiles + 1) >= int64_t(sms) &&
         GemvSmem(tokens, wpr, iters, GemvConfig{c.ips, c.ksplit, c.mtiles + 1}).total <= smem)
    ++c.mtiles;
  return c;
}

// Whether the decode kernel takes T tokens of `iters` iterations (at most 4 per warp of 16) within `smem` bytes
// of dynamic shared memory.
inline bool gemv_fits(int64_t tokens, int64_t wpr, int iters, int smem) {
  if (tokens < 1 || tokens > kGemvMaxTokens || iters > 4 * kGemvMaxWarps) return false;
  const int ips = (iters + kGemvMaxWarps - 1) / kGemvMaxWarps;
  return GemvSmem(int(tokens), wpr, iters, GemvConfig{ips, (iters + ips - 1) / ips, 1}).total <= smem;
}
}  // namespace gpu

// y = binary_linear(x) (with `fusion`) through the decode kernel; `config` from gpu::config_gemv unless a
// benchmark sets it. Preconditions (try_binary_gemv checks them): 1 <= T <= kGemvMaxTokens, gemv_fits, compute
// capability >= 8; the norm weight has unit stride. Act, the activations' type (float or bfloat16), is named,
// not deduced (float by default), so that Tensors may be passed.
template <class Act = float>
inline void binary_gemv(Context<Cuda>& ctx, int major,
                        TensorView<const typename NonDeduced<Act>::type, 2, Cuda> x,  // (T, in)
                        BitTensorView<const uint32_t, Cuda> signs,                     // (out, in)
                        TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                        TensorView<typename NonDeduced<Act>::type, 2, Cuda> y,  // (T, out)
                        gpu::GemvConfig config, const gpu::GemvFusion& fusion = {}) {
  using namespace gpu;
  const int64_t T = x.size(0), in = x.size(1), rows = signs.rows(), wpr = signs.words_per_row();
  const int iters = int(std::max<int64_t>(1, (wpr * 32 + kBlIterCols - 1) / kBlIterCols));
  BIMAMBA_CHECK(T >= 1 && T <= kGemvMaxTokens, "binary_gemv: ", T, " tokens (1 to ", kGemvMaxTokens, ")");
  BIMAMBA_CHECK(config.ips >= 1 && config.ksplit >= 1 && config.mtiles >= 1 &&
                    config.ksplit * config.mtiles <= kGemvMaxWarps && int64_t(config.ips) * config.ksplit >= iters,
                "binary_gemv: block shape ips ", config.ips, " ksplit ", config.ksplit, " mtiles ", config.mtiles,
                " does not cover ", iters, " iterations in at most ", kGemvMaxWarps, " warps");
  auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  BinaryGemvArgs<Act> args{};
  args.x = x.data();
  args.ldx = x.stride(0);
  args.tokens = int(T);
  args.in = in;
  args.alpha = alpha;
  args.beta = beta;
  const float* norm_weight = fusion.norm_weight.data();
  BIMAMBA_CHECK(!norm_weight || fusion.norm_weight.stride(0) == 1 || in <= 1,
                "binary_gemv: the norm weight needs unit stride");
  args.vec4 = in % 4 == 0 && (x.stride(0) % 4 == 0 || T == 1) && x.stride(1) == 1 && alpha.stride(0) == 1 &&
              beta.stride(0) == 1 && activation_quads_aligned(x.data()) && aligned16(alpha.data()) &&
              aligned16(beta.data()) && aligned16(norm_weight);
  args.norm_weight = norm_weight;
  args.eps = fusion.eps;
  args.accumulate = fusion.accumulate;
  args.signs = {signs.data(), rows, wpr, wpr % 4 == 0 && aligned16(signs.data())};
  args.bulk = major >= 9 && args.signs.vector_loads;
  args.y = y.data();
  args.ldy = y.stride(0);
  args.iters = iters;
  args.config = config;
  const int64_t block_rows = 16 * int64_t(config.mtiles);
  const dim3 grid{unsigned((rows + block_rows - 1) / block_rows)};
  const dim3 block(unsigned(32 * config.ksplit * config.mtiles));
  const int smem = GemvSmem(int(T), wpr, iters, config).total;
  launch_dependent(ctx.stream(), major, T <= 2 ? binary_gemv_kernel<1, Act> : binary_gemv_kernel<2, Act>, grid, block,
                   smem, args);
}

// Runs y = binary_linear(x) (with `fusion`) through the decode kernel when it takes this call (T tokens, the
// planes in shared memory, compute capability >= 8) and returns true; returns false, launching nothing, otherwise.
// The fusion as arguments: norm_weight (in) with unit stride, or empty; eps; accumulate. Act: float or bfloat16.
template <class Act>
inline bool try_binary_gemv(Context<Cuda>& ctx, TensorView<const Act, 2, Cuda> x,  // (T, in)
                            BitTensorView<const uint32_t, Cuda> signs,              // (out, in)
                            TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                            TensorView<Act, 2, Cuda> y,  // (T, out)
                            TensorView<const float, 1, Cuda> norm_weight = {}, float eps = 0.0f,
                            bool accumulate = false) {
  using namespace gpu;
  if (norm_weight.data() && norm_weight.stride(0) != 1 && x.size(1) > 1) return false;
  const GemvFusion fusion{norm_weight, eps, accumulate};
  int major = 0, sms = 1, smem_optin = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
  const int64_t iters = std::max<int64_t>(1, (signs.words_per_row() * 32 + kBlIterCols - 1) / kBlIterCols);
  const int64_t T = x.size(0), wpr = signs.words_per_row();
  const int dynamic_smem = smem_optin - kGemvStaticSmem;
  if (major < 8 || !gemv_fits(T, wpr, int(iters), dynamic_smem)) return false;
  binary_gemv<Act>(ctx, major, x, signs, alpha, beta, y,
                   config_gemv(int(T), signs.rows(), wpr, int(iters), sms, dynamic_smem), fusion);
  return true;
}

}  // namespace bimamba::detail
