// Cuda gated group-wise RMSNorm backward (see ops/gated_rms_norm_backward.hpp), the host's math in the host's
// precision (g = y silu(z) in double from float silu; the sums, dg, dy, dz and dw in double):
//   kernel 1 (gated_norm_backward_tile_kernel), a block per (tile of rows [t0, t1), group), min(S, 512) threads
//             (S rounded up to a warp); thread x owns the group's columns x + k blockDim.x. Row after row:
//             pass 1 loads y, z, dout of its columns (the first kGateCols into registers; any further ones are
//             read again in pass 2) and sums g^2 and w dout g; one barrier gives every thread the block's totals
//             (warp sums added in warp order); r = 1/sqrt(sum / S + eps);
//             pass 2: dg_j = r w_j dout_j - (r^3 / S) g_j dot, dy_j = dg_j silu(z_j), dz_j = dg_j y_j silu'(z_j),
//             and each thread adds dout_j g_j r of its columns over the tile's rows (r rounded to float, as the
//             host's). While it works on a row, the block prefetches the next row (and under Accumulate the
//             row's old dy, dz) into L2. At the end the tile's dw sums go to scratch: tiles x E doubles from
//             ctx.workspace(), taken only when dw is present.
//   then column_reduce (ops/cuda/column_reduce.cuh) over the tiles' sums: dw_j.
// Every addition's order depends only on the shapes: reruns give the same bits. Tiles have kGateTileRows rows, more
// when T > kGateMaxTiles x kGateTileRows (the tiles' sums stay bounded). y, z, dout are read from memory once and
// dy, dz written once (and read once under Accumulate), all through their strides; index arithmetic per element
// is a 32-bit column times the view's column stride, no division.
#pragma once

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kGateCols = 8;          // columns of a row that a thread keeps in registers
inline constexpr int kGateMaxThreads = 512;  // launch bound (up to 128 registers a thread)
inline constexpr int64_t kGateTileRows = 16, kGateMaxTiles = 512;

// Columns [c0, c0 + S) of one row of a (T, E) view: element i at p[i * s].
template <class T>
struct GroupRow {
  T* p;
  int s;
  __device__ T& operator()(int i) const { return p[int64_t(i) * s]; }
};

template <class T>
__device__ inline GroupRow<T> group_row(const TensorView<T, 2, Cuda>& v, int64_t t, int64_t c0) {
  return {v.data() + t * v.stride(0) + c0 * v.stride(1), int(v.stride(1))};
}

__device__ inline void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

template <class T>
__global__ void __launch_bounds__(kGateMaxThreads)
    gated_norm_backward_tile_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                                    TensorView<const T, 1, Cuda> w, int S, int64_t tile_rows, float eps,
                                    TensorView<const T, 2, Cuda> dout, TensorView<T, 2, Cuda> dy,
                                    TensorView<T, 2, Cuda> dz, double* partials, GradientMode mode) {
  __shared__ double warp_sums[2][kGateMaxThreads / 32][2];  // (row parity, warp, {sum g^2, dot})
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, step = blockDim.x;
  const int64_t c0 = blockIdx.y * int64_t(S), t0 = blockIdx.x * tile_rows, t1 = min(y.size(0), t0 + tile_rows);
  const bool has_dy = present(dy), has_dz = present(dz), has_dw = partials != nullptr;
  const bool accumulate = mode == GradientMode::Accumulate;
  const GroupRow<const T> wg{w.data() + c0 * w.stride(0), int(w.stride(0))};
  double* tile_sums = has_dw ? partials + blockIdx.x * y.size(1) + c0 : nullptr;  // this tile's dw sums
  double part[kGateCols] = {};                                                    // those of the cached columns
  for (int64_t t = t0; t < t1; ++t) {
    const auto yr = group_row(y, t, c0), zr = group_row(z, t, c0), gr = group_row(dout, t, c0);
    const auto dyr = has_dy ? group_row(dy, t, c0) : GroupRow<T>{};
    const auto dzr = has_dz ? group_row(dz, t, c0) : GroupRow<T>{};
    // Pass 1: the row's loads, the prefetches, then the sums.
    float yv[kGateCols], zv[kGateCols], gv[kGateCols];
#pragma unroll
    for (int k = 0; k < kGateCols; ++k) {
      const int i = threadIdx.x + k * step;
      if (i < S) yv[k] = yr(i), zv[k] = zr(i), gv[k] = gr(i);
    }
    if (t + 1 < t1) {
      const auto yn = group_row(y, t + 1, c0), zn = group_row(z, t + 1, c0), gn = group_row(dout, t + 1, c0);
#pragma unroll 1
      for (int i = threadIdx.x; i < S; i += step) prefetch_l2(&yn(i)), prefetch_l2(&zn(i)), prefetch_l2(&gn(i));
    }
    if (accumulate)
#pragma unroll 1
      for (int i = threadIdx.x; i < S; i += step) {
        if (has_dy) prefetch_l2(&dyr(i));
        if (has_dz) prefetch_l2(&dzr(i));
      }
    double sum = 0, dot = 0;
#pragma unroll
    for (int k = 0; k < kGateCols; ++k) {
      const int i = threadIdx.x + k * step;
      if (i >= S) continue;
      const double v = double(yv[k]) * silu(zv[k]);
      sum += v * v;
      dot += double(wg(i)) * gv[k] * v;
    }
    for (int i = threadIdx.x + kGateCols * step; i < S; i += step) {
      const double v = double(yr(i)) * silu(zr(i));
      sum += v * v;
      dot += double(wg(i)) * gr(i) * v;
    }
    // The block's totals, the same bits in every thread. Double-buffered by row parity: a thread writes a
    // buffer again two rows later, after every thread has passed the next row's barrier (so read this one).
    sum = warp_sum(sum);
    dot = warp_sum(dot);
    double(*sums)[2] = warp_sums[(t - t0) & 1];
    if (lane == 0) sums[warp][0] = sum, sums[warp][1] = dot;
    __syncthreads();
    sum = dot = 0;
    for (int k = 0; k < warps; ++k) sum += sums[k][0], dot += sums[k][1];
    const double rt = 1.0 / sqrt(sum / double(S) + eps), c = rt * rt * rt * dot / double(S);
    const double rw = float(rt);  // dw uses r rounded to float, as the host
    // Pass 2: every load before the first store (the compiler cannot know that the outputs alias no input, so
    // it would not move a load above a store).
    float wv[kGateCols], oy[kGateCols], oz[kGateCols];
#pragma unroll
    for (int k = 0; k < kGateCols; ++k) {
      const int i = threadIdx.x + k * step;
      if (i >= S) continue;
      wv[k] = wg(i);
      oy[k] = accumulate && has_dy ? dyr(i) : 0.0f;
      oz[k] = accumulate && has_dz ? dzr(i) : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kGateCols; ++k) {
      const int i = threadIdx.x + k * step;
      if (i >= S) continue;
      const float s = silu(zv[k]);
      const double v = double(yv[k]) * s, dg = rt * wv[k] * gv[k] - c * v;
      if (has_dy) {
        put_grad(oy[k], dg * s, mode);
        dyr(i) = oy[k];
      }
      if (has_dz) {
        put_grad(oz[k], dg * yv[k] * dsilu_grad(zv[k]), mode);
        dzr(i) = oz[k];
      }
      if (has_dw) part[k] += double(gv[k]) * v * rw;
    }
    for (int i = threadIdx.x + kGateCols * step; i < S; i += step) {
      const float yi = yr(i), zi = zr(i), gi = gr(i), s = silu(zi);
      const double v = double(yi) * s, dg = rt * wg(i) * gi - c * v;
      if (has_dy) put_grad(dyr(i), dg * s, mode);
      if (has_dz) put_grad(dzr(i), dg * yi * dsilu_grad(zi), mode);
      if (has_dw) tile_sums[i] = (t == t0 ? 0.0 : tile_sums[i]) + double(gi) * v * rw;  // this thread's own
    }
  }
  if (!has_dw) return;
#pragma unroll
  for (int k = 0; k < kGateCols; ++k)
    if (threadIdx.x + k * step < S) tile_sums[threadIdx.x + k * step] = part[k];
}

}  // namespace gpu

inline void gated_rms_norm_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y,
                                         TensorView<const float, 2, Cuda> z, TensorView<const float, 1, Cuda> w,
                                         int64_t groups, float eps, TensorView<const float, 2, Cuda> dout,
                                         TensorView<float, 2, Cuda> dy, TensorView<float, 2, Cuda> dz,
                                         TensorView<float, 1, Cuda> dw, GradientMode mode) {
  const int64_t T = y.size(0), E = y.size(1), S = E / groups;
  if (E == 0) return;
  auto fits = [](int64_t column_stride) { return column_stride >= INT32_MIN && column_stride <= INT32_MAX; };
  BIMAMBA_CHECK(groups <= 65535 && S < (int64_t(1) << 30), "gated_rms_norm_backward (Cuda): ", groups, " groups of ",
                S, " channels (at most 65535 groups of 2^30 - 1)");
  BIMAMBA_CHECK(fits(y.stride(1)) && fits(z.stride(1)) && fits(w.stride(0)) && fits(dout.stride(1)) &&
                    fits(dy.stride(1)) && fits(dz.stride(1)),
                "gated_rms_norm_backward (Cuda): a column stride exceeds 32 bits");
  const int64_t tile_rows = std::max(gpu::kGateTileRows, (T + gpu::kGateMaxTiles - 1) / gpu::kGateMaxTiles);
  const int64_t tiles = (T + tile_rows - 1) / tile_rows;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* partials = present(dw) ? ctx.workspace().take<double>(size_t(tiles * E)) : nullptr;  // (tiles, E)
  if (T > 0) {
    const int threads = int(std::min<int64_t>(gpu::kGateMaxThreads, (S + 31) / 32 * 32));
    gpu::gated_norm_backward_tile_kernel<float><<<dim3(unsigned(tiles), unsigned(groups)), threads, 0, ctx.stream()>>>(
        y, z, w, int(S), tile_rows, eps, dout, dy, dz, partials, mode);
    gpu::check_launch();
  }
  if (!present(dw)) return;
  column_reduce<1>(ctx, tiles, E, gpu::MatrixTerm{partials, E}, gpu::PutColumnGrad<float>{dw, mode});
}

}  // namespace bimamba::detail
