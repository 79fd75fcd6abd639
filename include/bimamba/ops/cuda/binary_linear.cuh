// Cuda FBI-Linear forward on packed signs (see ops/binary_linear.hpp): y = S (alpha ⊙ x) + (beta · x) 1.
// Three paths by the number of tokens T:
//   T <= kGemvMaxTokens (decode): binary_gemv.cuh, built for latency (when its planes fit in shared memory);
//   T <= kBlDenseTokens (small batch): the split-K tensor-core kernel of this file;
//   more (prefill, scoring): unpacked signs and one GEMM (ops/cuda/gemm.cuh, the context's GemmPrecision).
//
// The tensor-core kernels share the exact integer arithmetic of binary_mma.cuh. Here, per token t and K-slice k
// (a range of columns), with a_j = alpha_j x_tj, m = max_{j in slice} |a_j| and q_j = round(a_j 2^22 / m):
//   y_ti = sum_k [ (2 R_i - Q) m / 2^22 + sum_{j in k} beta_j x_tj ]
// The 8 mma columns hold 2 tokens x 3 planes; a launch handles 2 * NT tokens (NT mma tiles per step).
//
// Work: block = 4 warps = 64 output rows (one 16-row mma tile per warp) x one K-slice of `ips` iterations of
// 512 columns. The block first quantizes its slice of x into shared memory (PlaneLayout). With several
// slices, every block stores its float partial and the last block of a row group (an arrival counter in
// Context<Cuda>::counters, reset by that block) sums the partials in slice order: deterministic.
//
// Padding bits (columns >= in) meet q = 0 and contribute nothing. Needs sm_80 or newer (integer mma.sync).
//
// The dense path: the signs are unpacked to a +-1 float matrix S (rows, in) in the workspace, a = alpha ⊙ x
// and beta . x are formed per token, and one GEMM computes y = a S^T + (beta . x) 1: every weight is
// read once for all tokens (the tensor-core kernel would re-stream them for every 16 tokens), fp32
// accumulation, no quantization.
//
// Activations: every path is a template on x's and y's stored type Act, float or bfloat16 (activation_io.cuh).
// The kernels read x as float where they stage it (alpha ⊙ x, beta . x: bf16 widens exactly) and write y
// once, rounded for bf16, in the epilogue or the split-K fix-up (the partials stay fp32); the dense path widens
// x while forming a and, for bf16, lets the GEMM write fp32 scratch that one more pass rounds into y.
// Everything between is the float arithmetic above.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../core/workspace.hpp"
#include "../../tensor/bit_tensor.hpp"
#include "activation_io.cuh"
#include "binary_gemv.cuh"
#include "binary_mma.cuh"
#include "gemm.cuh"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kBlWarps = 4;             // warps per block, one 16-row tile each
inline constexpr int kBlRows = 16 * kBlWarps;  // output rows per block
inline constexpr int kBlMaxTokens = 16;        // tokens per launch (NT = 8 mma tiles of 2 tokens)
inline constexpr int kBlDenseTokens = 16;      // more tokens than this: unpacked signs and a GEMM
inline constexpr int kBlDepth = 4;             // iterations of sign words in flight per thread (8 x 16 bytes)

template <class Act>  // the activations' stored type: float or bfloat16 (activation_io.cuh)
struct BinaryLinearArgs {
  const Act* x;  // (tokens, in), row stride ldx
  int64_t ldx;
  int tokens;
  int64_t in;
  TensorView<const float, 1, Cuda> alpha, beta;  // (in)
  SignRows signs;                                // (rows, wpr) words
  bool vec4;          // 4-element loads of x, alpha, beta: in, ldx % 4 == 0, unit strides, aligned
  Act* y;             // (tokens, rows), row stride ldy
  int64_t ldy;
  int ips;            // iterations (of 512 columns) per slice
  int slices;
  float* partials;    // (slices, tokens, rows) when slices > 1
  unsigned* counters;  // (row groups) arrival counters, zero on entry and on exit
};

template <int NT, class Act>
__global__ void __launch_bounds__(kBlWarps * 32) binary_linear_kernel(BinaryLinearArgs<Act> a) {
  extern __shared__ __align__(16) unsigned char planes[];
  __shared__ float s_scale[kBlMaxTokens], s_bias[kBlMaxTokens], s_red[2][kBlWarps][kBlMaxTokens];
  __shared__ long long s_q[kBlMaxTokens];
  __shared__ int s_acc[kBlWarps][16][8 * NT];
  __shared__ bool s_last;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tig = lane & 3;
  const int slice = blockIdx.y, slice_cols = a.ips * kBlIterCols;
  const int64_t col0 = int64_t(slice) * slice_cols;
  const int64_t col_end = a.in < col0 + slice_cols ? a.in : col0 + slice_cols;
  const PlaneLayout layout(a.ips);  // plane row nt * 8 + n: mma column n of tile nt

  // 0. The first kBlDepth iterations of sign words are constant inputs: load them before anything else
  //    (on sm_90 even before the previous kernel has finished, see wait_for_previous_kernel).
  const int64_t r0 = (int64_t(blockIdx.x) * kBlWarps + warp) * 16;
  const int64_t word0 = int64_t(slice) * a.ips * (kBlIterCols / 32);
  auto word_at = [&](int it) { return word0 + int64_t(it) * (kBlIterCols / 32) + tig * 4; };
  uint4 u[kBlDepth], v[kBlDepth];
#pragma unroll
  for (int d = 0; d < kBlDepth; ++d) {
    u[d] = d < a.ips ? load_sign_words(a.signs, r0 + g, word_at(d)) : make_uint4(0, 0, 0, 0);
    v[d] = d < a.ips ? load_sign_words(a.signs, r0 + g + 8, word_at(d)) : make_uint4(0, 0, 0, 0);
  }
  wait_for_previous_kernel();
  allow_next_kernel();

  // 1. Stage a = alpha ⊙ x of the slice in shared memory, every token at once, and reduce per token
  //    m = max |a| and the slice's beta . x: one pass of independent (vector) loads, then one block reduction.
  constexpr int TT = 2 * NT;  // tokens a launch of this kernel can hold
  float* s_a = reinterpret_cast<float*>(planes + layout.bytes(8 * NT));  // (tokens, slice_cols)
  const int ncols = int(col_end - col0);
  float m[TT], bs[TT];
#pragma unroll
  for (int t = 0; t < TT; ++t) m[t] = bs[t] = 0.0f;
  if (a.vec4) {
#pragma unroll 4
    for (int c = 4 * tid; c < ncols; c += 4 * blockDim.x) {
      const float4 al = __ldg(reinterpret_cast<const float4*>(a.alpha.data() + col0 + c));
      const float4 be = __ldg(reinterpret_cast<const float4*>(a.beta.data() + col0 + c));
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if (t >= a.tokens) break;
        const float4 xv = load_activation4(a.x + t * a.ldx + col0 + c);
        const float4 av = make_float4(al.x * xv.x, al.y * xv.y, al.z * xv.z, al.w * xv.w);
        *reinterpret_cast<float4*>(s_a + t * slice_cols + c) = av;
        m[t] = fmaxf(fmaxf(m[t], fmaxf(fabsf(av.x), fabsf(av.y))), fmaxf(fabsf(av.z), fabsf(av.w)));
        bs[t] += be.x * xv.x + be.y * xv.y + be.z * xv.z + be.w * xv.w;
      }
    }
  } else {
#pragma unroll 4
    for (int c = tid; c < ncols; c += blockDim.x) {
      const float al = a.alpha(col0 + c), be = a.beta(col0 + c);
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if (t >= a.tokens) break;
        const float xv = load_activation(a.x + t * a.ldx + col0 + c), av = al * xv;
        s_a[t * slice_cols + c] = av;
        m[t] = fmaxf(m[t], fabsf(av));
        bs[t] += be * xv;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < TT; ++t) {
    if (t >= a.tokens) break;
    float mt = m[t];
    for (int offset = 16; offset > 0; offset >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, offset));
    const float bt = warp_sum(bs[t]);
    if (lane == 0) {
      s_red[0][warp][t] = mt;
      s_red[1][warp][t] = bt;
    }
  }
  __syncthreads();
  if (tid < a.tokens) {
    float mm = 0.0f, bb = 0.0f;
    for (int w = 0; w < kBlWarps; ++w) {
      mm = fmaxf(mm, s_red[0][w][tid]);
      bb += s_red[1][w][tid];
    }
    s_scale[tid] = mm;
    s_bias[tid] = bb;
    s_q[tid] = 0;
  }
  __syncthreads();

  // 2. Quantize into the planes: each thread fills the 32-bit words of columns {c, c+8, c+16, c+24}.
  float qscale[2 * NT];  // 2^22 / m_t, or 0 for a token of zeros (its planes stay zero)
#pragma unroll
  for (int t = 0; t < 2 * NT; ++t) qscale[t] = t < a.tokens && s_scale[t] != 0.0f ? 4194304.0f / s_scale[t] : 0.0f;
  long long qsum[kBlMaxTokens] = {};
  for (int quad4 = tid; quad4 < slice_cols / 4; quad4 += blockDim.x) {
    const int c = int(unsigned(quad4) / 8 * 32 + unsigned(quad4) % 8);  // first of the four columns
    uint32_t bytes[NT][8] = {};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t j = col0 + c + 8 * e;
#pragma unroll
      for (int t = 0; t < 2 * NT; ++t) {
        if (j >= col_end || qscale[t] == 0.0f) continue;
        uint32_t* n = bytes[t / 2] + (t % 2) * 3;  // the token's three plane rows in its tile
        qsum[t] += quantize_to_planes(s_a[t * slice_cols + (j - col0)], qscale[t], e, n[0], n[1], n[2]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int n = 0; n < 8; ++n) *reinterpret_cast<uint32_t*>(planes + layout.offset(nt * 8 + n, c)) = bytes[nt][n];
  }
#pragma unroll
  for (int t = 0; t < 2 * NT; ++t) {
    long long v = qsum[t];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (lane == 0 && t < a.tokens) atomicAdd(reinterpret_cast<unsigned long long*>(&s_q[t]), static_cast<unsigned long long>(v));
  }
  __syncthreads();

  // 3. The warp's 16 rows against the slice: R (per plane) in int32 mma accumulators. Iteration it uses
  //    the words loaded kDepth iterations earlier (the first kDepth were loaded before the prologue).
  int acc[NT][4] = {};
  for (int it0 = 0; it0 < a.ips; it0 += kBlDepth) {
#pragma unroll
    for (int d = 0; d < kBlDepth; ++d) {
      const int it = it0 + d;
      if (it >= a.ips) break;
      const unsigned char* b_lane[NT];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) b_lane[nt] = planes + layout.lane_base(nt * 8 + g, it, tig);
      mma_iteration<NT>(acc, u[d], v[d], b_lane);
      if (it + kBlDepth < a.ips) {
        u[d] = load_sign_words(a.signs, r0 + g, word_at(it + kBlDepth));
        v[d] = load_sign_words(a.signs, r0 + g + 8, word_at(it + kBlDepth));
      }
    }
  }

  // 4. Combine the planes per (row, token): acc columns n = 2 tig + {0, 1} of rows g and g + 8.
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s_acc[warp][g][nt * 8 + 2 * tig] = acc[nt][0];
    s_acc[warp][g][nt * 8 + 2 * tig + 1] = acc[nt][1];
    s_acc[warp][g + 8][nt * 8 + 2 * tig] = acc[nt][2];
    s_acc[warp][g + 8][nt * 8 + 2 * tig + 1] = acc[nt][3];
  }
  __syncthreads();
  const int64_t block_row0 = int64_t(blockIdx.x) * kBlRows;
  for (int k = tid; k < kBlRows * a.tokens; k += blockDim.x) {
    const int t = k / kBlRows, r = k % kBlRows;
    const int64_t row = block_row0 + r;
    if (row >= a.signs.rows) continue;
    const int* p = &s_acc[r / 16][r % 16][(t / 2) * 8 + (t % 2) * 3];
    const long long R = 65536ll * p[2] + 256ll * p[1] + p[0];
    const float value = float(double(2 * R - s_q[t]) * (double(s_scale[t]) / 4194304.0)) + s_bias[t];
    if (a.slices == 1) store_activation(a.y + t * a.ldy + row, value);
    else a.partials[(int64_t(slice) * a.tokens + t) * a.signs.rows + row] = value;
  }
  if (a.slices == 1) return;

  // 5. Split-K fix-up: the last block of this row group sums the slices in order.
  __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(&a.counters[blockIdx.x], 1u) == unsigned(a.slices - 1);
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int k = tid; k < kBlRows * a.tokens; k += blockDim.x) {
    const int t = k / kBlRows, r = k % kBlRows;
    const int64_t row = block_row0 + r;
    if (row >= a.signs.rows) continue;
    float sum = 0.0f;
    for (int sl = 0; sl < a.slices; ++sl) sum += __ldcg(&a.partials[(int64_t(sl) * a.tokens + t) * a.signs.rows + row]);
    store_activation(a.y + t * a.ldy + row, sum);
  }
  if (tid == 0) a.counters[blockIdx.x] = 0;
}

// Dense path: S(i, j) = +1 / -1 from bit j of row i (BitTensor layout), row stride `in`.
// (Templates on the element type, as every kernel in a header: no duplicate host stubs across translation units.)
template <class T>
__global__ void unpack_signs_kernel(const uint32_t* words, int64_t rows, int64_t wpr, int64_t in, T* S) {
  const int64_t n = rows * in;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / in, j = k % in;
    S[k] = (__ldg(words + i * wpr + j / 32) >> (j % 32)) & 1u ? T(1) : T(-1);
  }
}

// Dense path, one block per token t: a(t, :) = alpha ⊙ x(t, :) and bx[t] = beta . x(t, :), x read as float.
template <class Act>
__global__ void scale_tokens_kernel(const Act* x, int64_t ldx, int64_t in, TensorView<const float, 1, Cuda> alpha,
                                    TensorView<const float, 1, Cuda> beta, float* a, float* bx) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < in; j += blockDim.x) {
    const float xv = load_activation(x + t * ldx + j);
    a[t * in + j] = alpha(j) * xv;
    sum += beta(j) * xv;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) bx[t] = sum;
}

// Dense path: y(t, i) = bx[t], the term the GEMM then accumulates onto.
template <class T>
__global__ void fill_token_rows_kernel(const T* bx, int64_t tokens, int64_t rows, T* y, int64_t ldy) {
  const int64_t n = tokens * rows;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    y[(k / rows) * ldy + k % rows] = bx[k / rows];
}

// Dense path with bf16 y: y(t, i) = yf(t, i) rounded once, yf (tokens, rows) the fp32 result.
template <class Act>
__global__ void store_token_rows_kernel(const float* yf, int64_t tokens, int64_t rows, Act* y, int64_t ldy) {
  const int64_t n = tokens * rows;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    store_activation(y + (k / rows) * ldy + k % rows, yf[k]);
}

// Dynamic shared memory of a launch: the planes of NT tiles and alpha ⊙ x of `tokens` tokens over the slice.
inline int binary_linear_smem(int nt, int tokens, int ips) {
  return PlaneLayout(ips).bytes(8 * nt) + tokens * ips * kBlIterCols * int(sizeof(float));
}

// Slices so that the grid covers the device about once (more slices only add fix-up work), with at most
// max_ips iterations per slice (the shared-memory bound).
inline void choose_slices(int64_t row_groups, int64_t iters, int sms, int max_ips, int& ips, int& slices) {
  const int64_t target = int64_t(sms);
  const int64_t want = std::clamp<int64_t>((target + row_groups - 1) / row_groups, 1, std::max<int64_t>(1, iters));
  ips = std::min(int((iters + want - 1) / want), max_ips);
  slices = int((iters + ips - 1) / ips);
}

// Tiles of 2 tokens that a launch of `tokens` tokens uses: 1, 2, 4 or 8.
inline int tiles_for(int tokens) { return tokens <= 2 ? 1 : tokens <= 4 ? 2 : tokens <= 8 ? 4 : 8; }
}  // namespace gpu

// Act: float (the GEMM accumulates into y) or bfloat16 (into fp32 scratch, rounded into y by one more pass).
template <class Act>
void binary_linear_dense(Context<Cuda>& ctx, TensorView<const Act, 2, Cuda> x,  // (T, in)
                         BitTensorView<const uint32_t, Cuda> signs,              // (out, in)
                         TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                         TensorView<Act, 2, Cuda> y) {  // (T, out)
  using namespace gpu;
  constexpr bool kFloat = std::is_same_v<Act, float>;
  const int64_t T = x.size(0), in = x.size(1), rows = signs.rows();
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  float* S = ws.take<float>(size_t(rows * in));  // (rows, in)
  float* a = ws.take<float>(size_t(T * in));     // (T, in)
  float* bx = ws.take<float>(size_t(T));         // (T)
  float* yf;                                     // (T, rows), row stride ldyf: the fp32 result
  int64_t ldyf;
  if constexpr (kFloat) {
    yf = y.data();
    ldyf = y.stride(0);
  } else {
    yf = ws.take<float>(size_t(T * rows));
    ldyf = rows;
  }
  unpack_signs_kernel<float><<<grid_for(rows * in), kThreads, 0, ctx.stream()>>>(signs.data(), rows, signs.words_per_row(),
                                                                          in, S);
  check_launch();
  scale_tokens_kernel<Act><<<unsigned(T), kThreads, 0, ctx.stream()>>>(x.data(), x.stride(0), in, alpha, beta, a, bx);
  check_launch();
  fill_token_rows_kernel<float><<<grid_for(T * rows), kThreads, 0, ctx.stream()>>>(bx, T, rows, yf, ldyf);
  check_launch();
  gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, rows, T, in, S, in, a, in, 1.0f, yf, std::max(ldyf, rows));
  if constexpr (!kFloat) {
    store_token_rows_kernel<Act><<<grid_for(T * rows), kThreads, 0, ctx.stream()>>>(yf, T, rows, y.data(), y.stride(0));
    check_launch();
  }
}

// Act: float or bfloat16 (activation_io.cuh); every path reads x and writes y in it, computing in fp32.
template <class Act>
void binary_linear_impl(Context<Cuda>& ctx, TensorView<const Act, 2, Cuda> x,  // (T, in)
                        BitTensorView<const uint32_t, Cuda> signs,              // (out, in)
                        TensorView<const float, 1, Cuda> alpha,                 // (in)
                        TensorView<const float, 1, Cuda> beta,                  // (in)
                        TensorView<Act, 2, Cuda> y) {                           // (T, out)
  using namespace gpu;
  const int64_t T = x.size(0), in = x.size(1), rows = signs.rows(), wpr = signs.words_per_row();
  static_assert(kBlDenseTokens <= kBlMaxTokens, "the tensor-core path takes every token in one launch");
  if (T > kBlDenseTokens) return binary_linear_dense(ctx, x, signs, alpha, beta, y);
  if (T == 0 || try_binary_gemv(ctx, x, signs, alpha, beta, y)) return;
  int major = 0, sms = 1, smem_optin = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
  BIMAMBA_CHECK(major >= 8, "binary_linear: the Cuda kernel needs compute capability 8.0 or newer");
  const int64_t row_groups = (rows + kBlRows - 1) / kBlRows;
  const int64_t iters = std::max<int64_t>(1, (wpr * 32 + kBlIterCols - 1) / kBlIterCols);
  BIMAMBA_CHECK(row_groups < (int64_t(1) << 31) && iters < 65536, "binary_linear: ", rows, " x ", in,
                " is too large for the Cuda kernel");
  const int tokens = int(T), nt = tiles_for(tokens);
  const int smem_budget = smem_optin - int(sizeof(int)) * kBlWarps * 16 * 8 * nt - 1024;  // minus static
  int max_ips = 1;
  while (max_ips < iters && binary_linear_smem(nt, tokens, max_ips + 1) <= smem_budget) ++max_ips;
  int ips = 1, slices = 1;
  choose_slices(row_groups, iters, sms, max_ips, ips, slices);

  BinaryLinearArgs<Act> args{};
  args.in = in;
  args.alpha = alpha;
  args.beta = beta;
  args.signs = {signs.data(), rows, wpr, wpr % 4 == 0 && reinterpret_cast<uintptr_t>(signs.data()) % 16 == 0};
  auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  args.vec4 = in % 4 == 0 && (x.stride(0) % 4 == 0 || T == 1) && x.stride(1) == 1 && alpha.stride(0) == 1 &&
              beta.stride(0) == 1 && activation_quads_aligned(x.data()) && aligned16(alpha.data()) &&
              aligned16(beta.data());
  args.ldx = x.stride(0);
  args.ldy = y.stride(0);
  args.ips = ips;
  args.slices = slices;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  if (slices > 1) {
    args.partials = ctx.workspace().take<float>(size_t(slices * tokens * rows));
    args.counters = ctx.counters(size_t(row_groups));
  }
  args.tokens = tokens;
  args.x = x.data();
  args.y = y.data();
  const dim3 grid{unsigned(row_groups), unsigned(slices)};
  const int smem = binary_linear_smem(nt, tokens, ips);
  const dim3 block(kBlWarps * 32);
  switch (nt) {
    case 1: launch_dependent(ctx.stream(), major, binary_linear_kernel<1, Act>, grid, block, smem, args); break;
    case 2: launch_dependent(ctx.stream(), major, binary_linear_kernel<2, Act>, grid, block, smem, args); break;
    case 4: launch_dependent(ctx.stream(), major, binary_linear_kernel<4, Act>, grid, block, smem, args); break;
    default: launch_dependent(ctx.stream(), major, binary_linear_kernel<8, Act>, grid, block, smem, args); break;
  }
}

}  // namespace bimamba::detail
