// Cuda gated group-wise RMSNorm (see ops/gated_rms_norm.hpp): one block per (token, group), tokens along the
// grid's x (up to 2^31 - 1), groups along y, S / kNormCols threads rounded up to a warp (at most 1024). A thread
// owns the group's columns in runs of V (V = 4 where y, z, w and out lie in aligned float4s, else 1): run k of
// thread x starts at column V (x + k blockDim.x). Pass 1 computes g = y * silu(z) and sums g^2 (in float, the
// thread's columns in order, then block_sum); the g of its first kNormCols columns stay in registers, any further
// ones (S > 8192) are computed again from memory. Pass 2 writes g * rsqrt(mean g^2 + eps) * w. Each element is
// read and written by the same thread, so out may alias y.
// Why: y and z are read from memory once, a thread's loads (w's too) all go out before its sum, and at S = 3072
// (384 threads of 40 registers) four rows are in flight per SM. The previous kernel (about 4 columns a thread, two
// blocks per SM) read y and z again in pass 2 and took 0.22 ms at T = 8192, E = 3072, twice its memory time. The
// float4 runs (session 21) issue a quarter of the loads and stores of single floats.
// The row access (GroupRow, load_run, store_run) is shared with the backward (gated_rms_norm_backward.cuh).
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kNormCols = 8;  // columns of a row whose g a thread keeps in registers
inline constexpr int kNormMaxThreads = 1024;

// Columns [c0, c0 + S) of one row of a (T, E) view (or of a 1-D view): column i at p[i * s].
template <class T>
struct GroupRow {
  T* p;
  int s;
  __device__ T& operator()(unsigned i) const { return p[int64_t(i) * s]; }
};

template <class T>
__device__ inline GroupRow<T> group_row(const TensorView<T, 2, Cuda>& v, int64_t t, int64_t c0) {
  return {v.data() + t * v.stride(0) + c0 * v.stride(1), int(v.stride(1))};
}
template <class T>
__device__ inline GroupRow<T> group_row(const TensorView<T, 1, Cuda>& v, int64_t c0) {
  return {v.data() + c0 * v.stride(0), int(v.stride(0))};
}

// Columns [i, i + V) of a row into v / from v: one float4 when V = 4 (s = 1, 16-byte aligned), else one float.
template <int V, class T>
__device__ inline void load_run(const GroupRow<T>& row, unsigned i, float* v) {
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4*>(&row(i));
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
    v[0] = row(i);
  }
}
template <int V, class T>
__device__ inline void store_run(const GroupRow<T>& row, unsigned i, const float* v) {
  if constexpr (V == 4) *reinterpret_cast<float4*>(&row(i)) = make_float4(v[0], v[1], v[2], v[3]);
  else row(i) = v[0];
}

template <class T, int V>
__global__ void __launch_bounds__(kNormMaxThreads, 1)
    gated_rms_norm_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                          TensorView<const T, 1, Cuda> weight, int64_t group_size, float eps,
                          TensorView<T, 2, Cuda> out) {
  constexpr int kRuns = kNormCols / V;
  __shared__ float scratch[32];
  const unsigned tid = threadIdx.x, step = blockDim.x, S = unsigned(group_size);
  const unsigned held = min(S, kNormCols * step);  // columns [0, held) keep g in registers; a multiple of V
  const int64_t t = blockIdx.x, c0 = blockIdx.y * group_size;
  const auto yr = group_row(y, t, c0), zr = group_row(z, t, c0);
  const auto wr = group_row(weight, c0);
  const auto outr = group_row(out, t, c0);
  auto run = [&](int k) { return V * (tid + unsigned(k) * step); };  // first column of run k
  float g[kNormCols], wv[kNormCols], sum = 0.0f;  // w too: loaded before any store (out may alias y)
#pragma unroll
  for (int k = 0; k < kRuns; ++k) {
    if (run(k) >= held) continue;
    float yv[V], zv[V];
    load_run<V>(yr, run(k), yv);
    load_run<V>(zr, run(k), zv);
    load_run<V>(wr, run(k), wv + k * V);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      g[k * V + e] = yv[e] * silu(zv[e]);
      sum += g[k * V + e] * g[k * V + e];
    }
  }
  for (unsigned j = held + tid; j < S; j += step) {
    const float v = yr(j) * silu(zr(j));
    sum += v * v;
  }
  const float scale = rsqrtf(block_sum(sum, scratch) / float(S) + eps);
#pragma unroll
  for (int k = 0; k < kRuns; ++k) {
    if (run(k) >= held) continue;
    float o[V];
#pragma unroll
    for (int e = 0; e < V; ++e) o[e] = g[k * V + e] * scale * wv[k * V + e];
    store_run<V>(outr, run(k), o);
  }
  for (unsigned j = held + tid; j < S; j += step) outr(j) = yr(j) * silu(zr(j)) * scale * wr(j);
}
}  // namespace gpu

inline void gated_rms_norm_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y, TensorView<const float, 2, Cuda> z,
                                TensorView<const float, 1, Cuda> weight, int64_t groups, float eps,
                                TensorView<float, 2, Cuda> out) {
  if (y.numel() == 0) return;
  BIMAMBA_CHECK(groups < 65536 && y.size(0) < (int64_t(1) << 31), "gated_rms_norm: ", y.size(0), " rows x ", groups,
                " groups exceed the Cuda grid");
  BIMAMBA_CHECK(y.size(1) / groups < (int64_t(1) << 31), "gated_rms_norm (Cuda): groups of ", y.size(1) / groups,
                " channels (at most 2^31 - 1)");
  auto fits = [](int64_t column_stride) { return column_stride >= INT32_MIN && column_stride <= INT32_MAX; };
  BIMAMBA_CHECK(fits(y.stride(1)) && fits(z.stride(1)) && fits(weight.stride(0)) && fits(out.stride(1)),
                "gated_rms_norm (Cuda): a column stride exceeds 32 bits");
  const dim3 grid{unsigned(y.size(0)), unsigned(groups)};
  const int64_t group_size = y.size(1) / groups;
  const int64_t per_warp = 32 * gpu::kNormCols;  // kNormCols columns a thread, at most kNormMaxThreads threads
  const int threads = int(std::min<int64_t>(gpu::kNormMaxThreads, (group_size + per_warp - 1) / per_warp * 32));
  const bool quads = group_size % 4 == 0 && gpu::float4_rows(y) && gpu::float4_rows(z) && gpu::float4_rows(weight) &&
                     gpu::float4_rows(out);
  auto* kernel = quads ? gpu::gated_rms_norm_kernel<float, 4> : gpu::gated_rms_norm_kernel<float, 1>;
  kernel<<<grid, threads, 0, ctx.stream()>>>(y, z, weight, group_size, eps, out);
  gpu::check_launch();
}

}  // namespace bimamba::detail
