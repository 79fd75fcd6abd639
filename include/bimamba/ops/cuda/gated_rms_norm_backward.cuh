// Cuda gated group-wise RMSNorm backward (see ops/gated_rms_norm_backward.hpp), the host's math in the host's
// precision (g = y silu(z) in double from float silu; the sums, dg, dy, dz and dw in double):
//   kernel 1 (gated_norm_backward_tile_kernel), a block per (tile of rows [t0, t1), group), S / kGateCols threads
//             rounded up to a warp, at most kGateMaxThreads; thread x owns the group's columns x + k blockDim.x.
//             The first kGateCols of them are "held" (registers and shared memory, below); any further ones
//             (S > 6144) are read from memory in both passes. Row after row:
//             pass 1 sums g^2 and w dout g; one barrier gives every thread the block's totals (warp sums added
//             in warp order); r = 1/sqrt(sum / S + eps);
//             pass 2: dg_j = r w_j dout_j - (r^3 / S) g_j dot, dy_j = dg_j silu(z_j), dz_j = dg_j y_j silu'(z_j),
//             and each thread adds dout_j g_j r of its columns over the tile's rows (r rounded to float, as the
//             host's). At the end the tile's dw sums go to scratch: tiles x E doubles from ctx.workspace(), taken
//             only when dw is present.
//   then column_reduce (ops/cuda/column_reduce.cuh) over the tiles' sums: dw_j.
// The pipeline: the current row's y, z, dout sit in shared memory, each thread in its own slots (beside w in
// double, loaded once a tile, and the dw sums). Before row t's sums a thread issues row t + 1's loads into
// registers; after row t's pass 2 it issues row t + 1's old dy, dz (Accumulate) and moves row t + 1 into shared
// memory, its one wait on memory. A row's loads are thus in flight during the previous row's sums, barrier and
// pass 2. At S = 3072: 256 threads of 124 registers and 86 KB of shared memory, two blocks per SM.
// Why: a block that loads a row, sums it, waits at the barrier, then loads w and the old outputs and writes, row
// after row, is bound by latency (the previous kernel, a 512-thread block per SM: 0.49 ms at T = 8192, E = 3072,
// twice its memory time). Both rows in registers would take ~180 registers (the compiler keeps pass 1's gates
// for pass 2): one block per SM.
// Every addition's order depends only on the shapes and the device's SM count: reruns give the same bits. Tiles
// have kGateTileRows rows, fewer (down to kGateMinTileRows) where that would leave fewer than two blocks an SM,
// more when T > kGateMaxTiles x kGateTileRows (the tiles' sums stay bounded). (At batch 1 of the 780M shape, T =
// 2048: 128 tiles of 16 rows, one block on most SMs of an H100, took 9.3 ms a step against 6.5 ms for the kernel
// before; at batch 4, 512 tiles, 21.3 against 23.4 ms: session 19.) y, z, dout are read from memory once and
// dy, dz written once (and read once under Accumulate), all through their strides; index arithmetic per element
// is a 32-bit column times the view's column stride, no division.
#pragma once

#include <algorithm>

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kGateCols = 12;         // columns of a row per thread (3072 for 256 threads)
inline constexpr int kGateMaxThreads = 512;  // launch bound: at most 128 registers a thread
inline constexpr int64_t kGateTileRows = 16, kGateMinTileRows = 4, kGateMaxTiles = 512;

// Columns [c0, c0 + S) of one row of a (T, E) view: element i at p[i * s].
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

// The block's dynamic shared memory, indexed by the thread's columns i < held (no other thread touches slot i):
// w in double (loaded once), the tile's dw sums, and the current row's y, z, dout.
struct GateShared {
  double *w, *dw;
  float *y, *z, *dout;
  __device__ GateShared(double* p, unsigned held)
      : w(p), dw(p + held), y(reinterpret_cast<float*>(p + 2 * held)), z(y + held), dout(z + held) {}
  static int bytes(int held) { return held * int(2 * sizeof(double) + 3 * sizeof(float)); }
};

template <class T>
__global__ void __launch_bounds__(kGateMaxThreads)
    gated_norm_backward_tile_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                                    TensorView<const T, 1, Cuda> w, int S, int64_t tile_rows, float eps,
                                    TensorView<const T, 2, Cuda> dout, TensorView<T, 2, Cuda> dy,
                                    TensorView<T, 2, Cuda> dz, double* partials, GradientMode mode) {
  extern __shared__ double gate_shared[];
  __shared__ double warp_sums[2][kGateMaxThreads / 32][2];  // (row parity, warp, {sum g^2, dot})
  const unsigned tid = threadIdx.x, step = blockDim.x, lane = tid & 31, warp = tid >> 5, warps = step >> 5;
  const unsigned held = min(unsigned(S), kGateCols * step);  // columns [0, held): registers and shared memory
  const GateShared sh(gate_shared, held);
  const int64_t c0 = blockIdx.y * int64_t(S), t0 = blockIdx.x * tile_rows, t1 = min(y.size(0), t0 + tile_rows);
  const bool has_dy = present(dy), has_dz = present(dz), has_dw = partials != nullptr;
  const bool accumulate = mode == GradientMode::Accumulate;
  const GroupRow<const T> wg{w.data() + c0 * w.stride(0), int(w.stride(0))};
  double* tile_sums = has_dw ? partials + blockIdx.x * y.size(1) + c0 : nullptr;  // this tile's dw sums
  float next_y[kGateCols], next_z[kGateCols], next_dout[kGateCols];  // loads in flight: the next row
  float old_dy[kGateCols], old_dz[kGateCols];                         // and, under Accumulate, the row's old dy, dz
  auto load_row = [&](int64_t t) {
    const auto yr = group_row(y, t, c0), zr = group_row(z, t, c0), gr = group_row(dout, t, c0);
#pragma unroll
    for (unsigned k = 0; k < kGateCols; ++k) {
      const unsigned i = tid + k * step;
      if (i < held) next_y[k] = yr(i), next_z[k] = zr(i), next_dout[k] = gr(i);
    }
  };
  auto load_old = [&](int64_t t) {
    if (!accumulate) return;
    const auto dyr = has_dy ? group_row(dy, t, c0) : GroupRow<T>{};
    const auto dzr = has_dz ? group_row(dz, t, c0) : GroupRow<T>{};
#pragma unroll
    for (unsigned k = 0; k < kGateCols; ++k) {
      const unsigned i = tid + k * step;
      if (i >= held) continue;
      if (has_dy) old_dy[k] = dyr(i);
      if (has_dz) old_dz[k] = dzr(i);
    }
  };
  auto stage_row = [&] {  // waits for the loads
#pragma unroll
    for (unsigned k = 0; k < kGateCols; ++k) {
      const unsigned i = tid + k * step;
      if (i < held) sh.y[i] = next_y[k], sh.z[i] = next_z[k], sh.dout[i] = next_dout[k];
    }
  };
  load_row(t0);
  load_old(t0);
  for (unsigned i = tid; i < held; i += step) sh.w[i] = wg(i), sh.dw[i] = 0;
  stage_row();
  for (int64_t t = t0; t < t1; ++t) {
    const bool more = t + 1 < t1;
    if (more) load_row(t + 1);  // lands while this row is summed and written
    const auto yr = group_row(y, t, c0), zr = group_row(z, t, c0), gr = group_row(dout, t, c0);
    // Pass 1: the sums.
    double sum = 0, dot = 0;
#pragma unroll
    for (unsigned k = 0; k < kGateCols; ++k) {
      const unsigned i = tid + k * step;
      if (i >= held) continue;
      const double v = double(sh.y[i]) * silu(sh.z[i]);
      sum += v * v;
      dot += sh.w[i] * sh.dout[i] * v;
    }
    for (unsigned i = held + tid; i < unsigned(S); i += step) {
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
    for (unsigned k = 0; k < warps; ++k) sum += sums[k][0], dot += sums[k][1];
    const double rt = 1.0 / sqrt(sum / double(S) + eps), c = rt * rt * rt * dot / double(S);
    const double rw = float(rt);  // dw uses r rounded to float, as the host
    // Pass 2: dy, dz and the dw sums.
    const auto dyr = has_dy ? group_row(dy, t, c0) : GroupRow<T>{};
    const auto dzr = has_dz ? group_row(dz, t, c0) : GroupRow<T>{};
#pragma unroll
    for (unsigned k = 0; k < kGateCols; ++k) {
      const unsigned i = tid + k * step;
      if (i >= held) continue;
      const float yi = sh.y[i], zi = sh.z[i], gi = sh.dout[i], s = silu(zi);
      const double v = double(yi) * s, dg = rt * sh.w[i] * gi - c * v;
      if (has_dy) {
        float g = accumulate ? old_dy[k] : 0.0f;
        put_grad(g, dg * s, mode);
        dyr(i) = g;
      }
      if (has_dz) {
        float g = accumulate ? old_dz[k] : 0.0f;
        put_grad(g, dg * yi * dsilu_grad(zi), mode);
        dzr(i) = g;
      }
      if (has_dw) sh.dw[i] += double(gi) * v * rw;
    }
    for (unsigned i = held + tid; i < unsigned(S); i += step) {
      const float yi = yr(i), zi = zr(i), gi = gr(i), s = silu(zi);
      const double v = double(yi) * s, dg = rt * wg(i) * gi - c * v;
      if (has_dy) put_grad(dyr(i), dg * s, mode);
      if (has_dz) put_grad(dzr(i), dg * yi * dsilu_grad(zi), mode);
      if (has_dw) tile_sums[i] = (t == t0 ? 0.0 : tile_sums[i]) + double(gi) * v * rw;  // this thread's own
    }
    if (!more) break;
    load_old(t + 1);  // lands while the next row is summed
    stage_row();
  }
  if (!has_dw) return;
  for (unsigned i = tid; i < held; i += step) tile_sums[i] = sh.dw[i];
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
  int sms = 1;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
  const int64_t two_per_sm = (T * groups + 2 * sms - 1) / (2 * sms);  // rows a tile for two blocks an SM
  const int64_t tile_rows =
      std::max(std::clamp(two_per_sm, gpu::kGateMinTileRows, gpu::kGateTileRows),
               (T + gpu::kGateMaxTiles - 1) / gpu::kGateMaxTiles);
  const int64_t tiles = (T + tile_rows - 1) / tile_rows;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* partials = present(dw) ? ctx.workspace().take<double>(size_t(tiles * E)) : nullptr;  // (tiles, E)
  if (T > 0) {
    // kGateCols columns a thread, S rounded up to warps; at most kGateMaxThreads (columns beyond are read twice)
    const int64_t per_warp = 32 * gpu::kGateCols;
    const int threads = int(std::min<int64_t>(gpu::kGateMaxThreads, (S + per_warp - 1) / per_warp * 32));
    const int smem = gpu::GateShared::bytes(int(std::min<int64_t>(S, threads * gpu::kGateCols)));
    auto* kernel = gpu::gated_norm_backward_tile_kernel<float>;
    if (smem > (48 << 10)) {  // 86 KB at S = 3072; 172 KB at most (S >= 6144), above sm_80's 163 KB opt-in
      int optin = 0;
      BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
      BIMAMBA_CHECK(smem <= optin, "gated_rms_norm_backward (Cuda): groups of ", S, " channels need ", smem,
                    " bytes of shared memory per block, above this device's ", optin);
      BIMAMBA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    }
    kernel<<<dim3(unsigned(tiles), unsigned(groups)), threads, smem, ctx.stream()>>>(y, z, w, int(S), tile_rows, eps,
                                                                                     dout, dy, dz, partials, mode);
    gpu::check_launch();
  }
  if (!present(dw)) return;
  column_reduce<1>(ctx, tiles, E, gpu::MatrixTerm{partials, E}, gpu::PutColumnGrad<float>{dw, mode});
}

}  // namespace bimamba::detail
