// Cuda gated group-wise RMSNorm backward (see ops/gated_rms_norm_backward.hpp), and without the gate (g = y) the
// RMSNorm backward (rms_norm_backward.cuh):
//   kernel 1 (gated_norm_backward_rows_kernel), grid (blocks, groups): block x walks the rows t = x, x + blocks,
//             ... of group y, where blocks is what the SMs hold at once (occupancy API), at most T and
//             kGateMaxBlocks. S / kGateCols threads rounded up to a warp, at most kGateMaxThreads. A thread owns the
//             group's columns in runs of V (V = 4 where every row lies in aligned float4s, else 1): run k of thread
//             x starts at column V (x + k blockDim.x), k < kGateCols / V. These first kGateCols columns a thread
//             are "held": loaded once a row into registers. Any further ones (S > kGateCols x kGateMaxThreads) are
//             read from memory in both passes. Row by row:
//             one round of independent loads of y, z, dout; pass 1 sums g^2 and w dout g (g = y silu(z) in
//             float, the sums in double); one barrier gives every thread the block's totals (warp sums added in
//             warp order); r = 1/sqrt(sum / S + eps), c = r^3 dot / S; pass 2 in float: dg = r w dout - c g,
//             dy = dg silu(z), dz = dg y silu'(z), and the thread's dw sums (double, shared memory) += dout g r.
//             At the end the block's dw sums go to scratch: blocks x E doubles from ctx.workspace(), taken only
//             when dw is present.
//   then column_reduce (ops/cuda/column_reduce.cuh) over the blocks' sums: dw_j.
// Precision: the element math in float is ~1e-7 relative from the host's double (ops/host/gated_rms_norm_backward.hpp);
// the sums over a row and over tokens stay in double.
// Why (session 21): the previous kernel (tiles of 16 rows, the next row's loads in flight through registers into
// shared memory, the element math in double: 124 registers, two blocks an SM) took 445 us a layer at T = 8192,
// E = 3072 on an H100, 2.7x the time of its 0.5 GB. Here a thread holds one row's 24 floats (two float4s of y, z
// and dout) and nothing ahead, within 64 registers (sm_90, the float4 form: two 384-thread blocks an SM); one
// block's loads overlap the other's sums and barrier, with half the instructions of double element math.
// Every addition's order depends only on the shapes and the device (its SM count and the kernel's occupancy):
// reruns give the same bits. y, z, dout are read once and dy, dz written once (and read once under Accumulate),
// all through their strides; index arithmetic per element is a 32-bit column times the view's column stride.
#pragma once

#include <algorithm>

#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "gated_rms_norm.cuh"
#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
inline constexpr int kGateCols = 8;          // columns of a row a thread holds (3072 for 384 threads)
inline constexpr int kGateMaxThreads = 512;
inline constexpr int kGateMaxBlocks = 1024;  // blocks a group at most: bounds the dw scratch (blocks x E doubles)

// kGate = false: the RMSNorm backward (rms_norm_backward.cuh), g = y, no z and no dz.
template <class T, int V, bool kGate>
__global__ void __launch_bounds__(kGateMaxThreads, 2)
    norm_backward_rows_kernel(TensorView<const T, 2, Cuda> y, TensorView<const T, 2, Cuda> z,
                                    TensorView<const T, 1, Cuda> w, int S, float eps,
                                    TensorView<const T, 2, Cuda> dout, TensorView<T, 2, Cuda> dy,
                                    TensorView<T, 2, Cuda> dz, double* partials, GradientMode mode) {
  constexpr int kRuns = kGateCols / V;
  extern __shared__ double gate_shared[];                   // (held) dw sums in double, then (held) w in float
  __shared__ double warp_sums[2][kGateMaxThreads / 32][2];  // (row parity, warp, {sum g^2, dot})
  const unsigned tid = threadIdx.x, step = blockDim.x, lane = tid & 31, warp = tid >> 5, warps = step >> 5;
  const unsigned held = min(unsigned(S), kGateCols * step);  // a multiple of V
  double* dw_sums = gate_shared;
  float* w_held = reinterpret_cast<float*>(gate_shared + held);
  const int64_t rows = y.size(0), c0 = blockIdx.y * int64_t(S);
  const bool has_dy = present(dy), has_dz = present(dz), has_dw = partials != nullptr;
  const bool accumulate = mode == GradientMode::Accumulate;
  const GroupRow<const T> wg{w.data() + c0 * w.stride(0), int(w.stride(0))};
  double* block_sums = has_dw ? partials + blockIdx.x * y.size(1) + c0 : nullptr;  // this block's dw sums
  auto run = [&](int k) { return V * (tid + unsigned(k) * step); };                 // first column of run k
#pragma unroll
  for (int k = 0; k < kRuns; ++k)  // each thread sets (and later reads) only its own columns: no barrier
    for (unsigned i = run(k); i < run(k) + V && i < held; ++i) w_held[i] = wg(i), dw_sums[i] = 0;
  unsigned parity = 0;
  for (int64_t t = blockIdx.x; t < rows; t += gridDim.x, parity ^= 1) {
    const auto yr = group_row(y, t, c0), gr = group_row(dout, t, c0);
    const auto zr = kGate ? group_row(z, t, c0) : GroupRow<const T>{};
    float yv[kGateCols], zv[kGateCols], gv[kGateCols];  // zv only when kGate
#pragma unroll
    for (int k = 0; k < kRuns; ++k) {
      if (run(k) >= held) continue;
      load_run<V>(yr, run(k), yv + k * V);
      if (kGate) load_run<V>(zr, run(k), zv + k * V);
      load_run<V>(gr, run(k), gv + k * V);
    }
    // Pass 1: the sums.
    double sum = 0, dot = 0;
#pragma unroll
    for (int u = 0; u < kGateCols; ++u) {
      const unsigned i = run(u / V) + u % V;
      if (i >= held) continue;
      const float g = kGate ? yv[u] * (zv[u] * (1.0f / (1.0f + expf(-zv[u])))) : yv[u];  // as pass 2
      sum += double(g) * g;
      dot += double(w_held[i] * gv[u]) * g;
    }
    for (unsigned i = held + tid; i < unsigned(S); i += step) {
      const float g = kGate ? yr(i) * silu(zr(i)) : yr(i);
      sum += double(g) * g;
      dot += double(wg(i) * gr(i)) * g;
    }
    // The block's totals, the same bits in every thread. Double-buffered by row parity: a thread writes a
    // buffer again two rows later, after every thread has passed the next row's barrier (so read this one).
    sum = warp_sum(sum);
    dot = warp_sum(dot);
    double(*sums)[2] = warp_sums[parity];
    if (lane == 0) sums[warp][0] = sum, sums[warp][1] = dot;
    __syncthreads();
    sum = dot = 0;
    for (unsigned k = 0; k < warps; ++k) sum += sums[k][0], dot += sums[k][1];
    const double rt = 1.0 / sqrt(sum / double(S) + eps);
    const float r = float(rt), c = float(rt * rt * rt * dot / double(S));
    // Pass 2: dy, dz and the dw sums.
    const auto dyr = has_dy ? group_row(dy, t, c0) : GroupRow<T>{};
    const auto dzr = has_dz ? group_row(dz, t, c0) : GroupRow<T>{};
#pragma unroll
    for (int k = 0; k < kRuns; ++k) {
      if (run(k) >= held) continue;
      float ny[V] = {}, nz[V] = {};  // the old values under Accumulate, then the new ones
      if (accumulate && has_dy) load_run<V>(dyr, run(k), ny);
      if (accumulate && has_dz) load_run<V>(dzr, run(k), nz);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const int u = k * V + e;
        const float zi = kGate ? zv[u] : 0.0f, sg = kGate ? 1.0f / (1.0f + expf(-zi)) : 1.0f;
        const float s = kGate ? zi * sg : 1.0f;
        const float g = yv[u] * s, dg = r * w_held[run(k) + e] * gv[u] - c * g;
        ny[e] += dg * s;
        if (kGate) nz[e] += dg * yv[u] * (sg * (1.0f + zi * (1.0f - sg)));
        if (has_dw) dw_sums[run(k) + e] += double(gv[u] * g * r);
      }
      if (has_dy) store_run<V>(dyr, run(k), ny);
      if (has_dz) store_run<V>(dzr, run(k), nz);
    }
    for (unsigned i = held + tid; i < unsigned(S); i += step) {
      const float yi = yr(i), zi = kGate ? zr(i) : 0.0f, gi = gr(i), s = kGate ? silu(zi) : 1.0f, g = yi * s;
      const float dg = r * wg(i) * gi - c * g;
      if (has_dy) dyr(i) = dg * s + (accumulate ? float(dyr(i)) : 0.0f);
      if (has_dz) dzr(i) = dg * yi * silu_grad_float(zi) + (accumulate ? float(dzr(i)) : 0.0f);
      if (has_dw) block_sums[i] = (t == blockIdx.x ? 0.0 : block_sums[i]) + double(gi * g * r);  // its own column
    }
  }
  if (!has_dw) return;
#pragma unroll
  for (int k = 0; k < kRuns; ++k)
    for (unsigned i = run(k); i < run(k) + V && i < held; ++i) block_sums[i] = dw_sums[i];
}

}  // namespace gpu

// The kernel's launch for either norm (`op` names it in errors); z and dz are empty views when !kGate.
template <bool kGate>
void norm_backward_rows(Context<Cuda>& ctx, const char* op, TensorView<const float, 2, Cuda> y,
                        TensorView<const float, 2, Cuda> z, TensorView<const float, 1, Cuda> w, int64_t groups,
                        float eps, TensorView<const float, 2, Cuda> dout, TensorView<float, 2, Cuda> dy,
                        TensorView<float, 2, Cuda> dz, TensorView<float, 1, Cuda> dw, GradientModes modes) {
  const int64_t T = y.size(0), E = y.size(1), S = E / groups;
  if (E == 0) return;
  auto fits = [](int64_t column_stride) { return column_stride >= INT32_MIN && column_stride <= INT32_MAX; };
  BIMAMBA_CHECK(groups <= 65535 && S < (int64_t(1) << 30), op, " (Cuda): ", groups, " groups of ", S,
                " channels (at most 65535 groups of 2^30 - 1)");
  BIMAMBA_CHECK(fits(y.stride(1)) && fits(z.stride(1)) && fits(w.stride(0)) && fits(dout.stride(1)) &&
                    fits(dy.stride(1)) && fits(dz.stride(1)),
                op, " (Cuda): a column stride exceeds 32 bits");
  // kGateCols columns a thread, S rounded up to warps; at most kGateMaxThreads (columns beyond are read twice)
  const int64_t per_warp = 32 * gpu::kGateCols;
  const int threads = int(std::min<int64_t>(gpu::kGateMaxThreads, (S + per_warp - 1) / per_warp * 32));
  const int64_t held = std::min<int64_t>(S, threads * gpu::kGateCols);
  // The held columns' dw sums (double) and w (float): 36 KB at S = 3072, 48 KB at most. With the kernel's static
  // 512 bytes that is above the 48 KB a block gets without opting in (the H100 refused the launch at S = 6163).
  const int smem = int(held * int64_t(sizeof(double) + sizeof(float)));
  const bool quads = S % 4 == 0 && gpu::float4_rows(y) && (!kGate || gpu::float4_rows(z)) &&
                     gpu::float4_rows(dout) && (!present(dy) || gpu::float4_rows(dy)) &&
                     (!present(dz) || gpu::float4_rows(dz));
  auto* kernel =
      quads ? gpu::norm_backward_rows_kernel<float, 4, kGate> : gpu::norm_backward_rows_kernel<float, 1, kGate>;
  if (smem > (47 << 10)) {
    int optin = 0;
    BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
    BIMAMBA_CHECK(smem + 1024 <= optin, op, " (Cuda): groups of ", S, " channels need ", smem,
                  " bytes of shared memory per block, above this device's ", optin);
    BIMAMBA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  }
  int sms = 1, per_sm = 1;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device()));
  BIMAMBA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, size_t(smem)));
  const int64_t resident = std::max<int64_t>(1, int64_t(per_sm) * sms);  // blocks the SMs hold at once
  const int64_t blocks = std::clamp<int64_t>((resident + groups - 1) / groups, 1,
                                             std::max<int64_t>(1, std::min<int64_t>(T, gpu::kGateMaxBlocks)));
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* partials = present(dw) ? ctx.workspace().take<double>(size_t(blocks * E)) : nullptr;  // (blocks, E)
  if (T > 0) {
    kernel<<<dim3(unsigned(blocks), unsigned(groups)), threads, smem, ctx.stream()>>>(y, z, w, int(S), eps, dout, dy,
                                                                                    dz, partials, modes.inputs);
    gpu::check_launch();
  }
  if (!present(dw)) return;
  column_reduce<1>(ctx, T > 0 ? blocks : 0, E, gpu::MatrixTerm{partials, E},
                   gpu::PutColumnGrad<float>{dw, modes.params});
}

inline void gated_rms_norm_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> y,
                                         TensorView<const float, 2, Cuda> z, TensorView<const float, 1, Cuda> w,
                                         int64_t groups, float eps, TensorView<const float, 2, Cuda> dout,
                                         TensorView<float, 2, Cuda> dy, TensorView<float, 2, Cuda> dz,
                                         TensorView<float, 1, Cuda> dw, GradientModes modes) {
  norm_backward_rows<true>(ctx, "gated_rms_norm_backward", y, z, w, groups, eps, dout, dy, dz, dw, modes);
}

}  // namespace bimamba::detail
