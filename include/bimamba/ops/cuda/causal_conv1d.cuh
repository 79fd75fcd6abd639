// Cuda causal depthwise conv1d, prefill and step (see ops/causal_conv1d.hpp).
//   prefill: a block per (kConvChannels channels, kConvTokens tokens of one sequence), a thread per channel (every
//            output reads only inputs, so all are independent). For K <= kConvRegisterTaps (every Mamba preset)
//            causal_conv1d_registers_kernel loads the tile's inputs (and the K - 1 before it) into registers, every
//            load issued before the first output: a warp reads 32 consecutive channels of a token (coalesced) and
//            a thread has ~35 loads in flight. Larger K goes through shared memory (causal_conv1d_kernel).
//            Then one thread per (b, c) writes final_state[b, c, k] = input(L - K + k) for k = 0 .. K-1 in
//            increasing k. When final_state is initial_state's memory, input(L - K + k) with L - K + k < 0 reads
//            index L + k > k, which this thread overwrites only later, so the in-place update is exact.
//   step:    one thread per (b, c): shift its rolling state, append x, dot with the weights.
#pragma once

#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
// Input at time s in [-(K-1), L) of sequence b, channel c (initial_state or zeros before 0).
template <class T>
__device__ inline float conv_input(TensorView<const T, 3, Cuda> x, TensorView<const T, 3, Cuda> initial_state, int64_t K,
                                   int64_t b, int64_t s, int64_t c) {
  if (s >= 0) return x(b, s, c);
  return present(initial_state) ? initial_state(b, c, K + s) : 0.0f;
}

// Prefill and training tiles (the backward's too, ops/cuda/causal_conv1d_backward.cuh). Index arithmetic per
// element is multiplications by the views' strides; divisions only per tile.
inline constexpr int kConvChannels = 128;
inline constexpr int kConvTokens = 32;
inline constexpr int kConvRegisterTaps = 4;  // the largest K of the register kernels

// Weights of channel c padded at the front to kConvRegisterTaps taps (zeros, then w[c, 0 .. K-1]): with them, tap k
// of token t reads input(t - kConvRegisterTaps + 1 + k) for every K <= kConvRegisterTaps.
template <class T>
__device__ inline void padded_conv_taps(TensorView<const T, 2, Cuda> w, int64_t c, float (&taps)[kConvRegisterTaps]) {
  const int64_t pad = kConvRegisterTaps - w.size(1);
#pragma unroll
  for (int k = 0; k < kConvRegisterTaps; ++k) taps[k] = k >= pad ? float(w(c, k - pad)) : 0.0f;
}

// Raises kernel's dynamic shared memory limit to smem bytes when that is above the 48 KB default; throws, naming
// d_conv = K, when it is above the device's opt-in limit.
template <class Kernel>
void allow_conv_tile_smem(Context<Cuda>& ctx, Kernel* kernel, size_t smem, int64_t K, const char* op) {
  if (smem <= (48 << 10)) return;
  int optin = 0;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx.device()));
  BIMAMBA_CHECK(smem <= size_t(optin), op, " (Cuda): d_conv K = ", K, " needs ", smem,
                " bytes of shared memory per block, above this device's ", optin);
  BIMAMBA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
}

template <class T>
__global__ void __launch_bounds__(kConvChannels)
    causal_conv1d_registers_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> weight,
                                   TensorView<const T, 1, Cuda> bias, TensorView<T, 3, Cuda> y, Activation act,
                                   TensorView<const T, 3, Cuda> initial_state) {
  constexpr int KR = kConvRegisterTaps, Q = kConvTokens;
  const int64_t L = x.size(1), C = x.size(2), K = weight.size(1);
  const int64_t c = blockIdx.x * int64_t(kConvChannels) + threadIdx.x;
  if (c >= C) return;
  float taps[KR];
  padded_conv_taps(weight, c, taps);
  const float b0 = present(bias) ? float(bias(c)) : 0.0f;
  const int64_t tiles = (L + Q - 1) / Q, sx = x.stride(1), sy = y.stride(1);
  for (int64_t bt = blockIdx.y; bt < x.size(0) * tiles; bt += gridDim.y) {
    const int64_t b = bt / tiles, t0 = bt % tiles * Q;
    const int n = int(min(int64_t(Q), L - t0));  // tokens of the tile
    const T* xp = &x(b, 0, c);
    float xs[Q + KR - 1];  // input(t0 - KR + 1 + r); taps before the state (s <= -K) have weight 0
#pragma unroll
    for (int r = 0; r < Q + KR - 1; ++r) {
      const int64_t s = t0 - (KR - 1) + r;
      xs[r] = s >= 0 ? (s < L ? float(xp[s * sx]) : 0.0f)
                     : (s > -K && present(initial_state) ? float(initial_state(b, c, K + s)) : 0.0f);
    }
    T* yp = &y(b, 0, c);
#pragma unroll
    for (int q = 0; q < Q; ++q) {
      if (q >= n) break;
      float acc = b0;
#pragma unroll
      for (int k = 0; k < KR; ++k) acc += taps[k] * xs[q + k];
      yp[(t0 + q) * sy] = activate(act, acc);
    }
  }
}

// K > kConvRegisterTaps: each thread copies its channel's inputs of the tile to shared memory first.
template <class T>
__global__ void __launch_bounds__(kConvChannels)
    causal_conv1d_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 2, Cuda> weight,
                         TensorView<const T, 1, Cuda> bias, TensorView<T, 3, Cuda> y, Activation act,
                         TensorView<const T, 3, Cuda> initial_state) {
  extern __shared__ float x_tile[];  // (kConvTokens + K - 1, kConvChannels): input(t0 - K + 1 + r) at row r
  const int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = weight.size(1);
  const int64_t c = blockIdx.x * int64_t(kConvChannels) + threadIdx.x;
  if (c >= C) return;
  float* xs = x_tile + threadIdx.x;
  const float b0 = present(bias) ? bias(c) : 0.0f;
  const int64_t tiles = (L + kConvTokens - 1) / kConvTokens;
  for (int64_t bt = blockIdx.y; bt < B * tiles; bt += gridDim.y) {
    const int64_t b = bt / tiles, t0 = bt % tiles * kConvTokens, t1 = min(L, t0 + kConvTokens);
    for (int64_t r = 0; r < t1 - t0 + K - 1; ++r)
      xs[r * kConvChannels] = conv_input(x, initial_state, K, b, t0 - K + 1 + r, c);
    for (int64_t t = t0; t < t1; ++t) {
      float acc = b0;
      for (int64_t k = 0; k < K; ++k) acc += weight(c, k) * xs[(t - t0 + k) * kConvChannels];
      y(b, t, c) = activate(act, acc);
    }
  }
}

template <class T>
__global__ void conv_final_state_kernel(TensorView<const T, 3, Cuda> x, TensorView<const T, 3, Cuda> initial_state,
                                        TensorView<T, 3, Cuda> final_state) {
  const int64_t L = x.size(1), C = x.size(2), K = final_state.size(2), n = x.size(0) * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / C, c = i % C;
    for (int64_t k = 0; k < K; ++k) final_state(b, c, k) = conv_input(x, initial_state, K, b, L - K + k, c);
  }
}

template <class T>
__global__ void causal_conv1d_step_kernel(TensorView<const T, 2, Cuda> x, TensorView<const T, 2, Cuda> weight,
                                          TensorView<const T, 1, Cuda> bias, TensorView<T, 3, Cuda> state,
                                          TensorView<T, 2, Cuda> y, Activation act) {
  const int64_t C = x.size(1), K = weight.size(1), n = x.size(0) * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / C, c = i % C;
    T* s = &state(b, c, 0);
    for (int64_t k = 0; k + 1 < K; ++k) s[k] = s[k + 1];
    s[K - 1] = x(b, c);
    float acc = present(bias) ? bias(c) : 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += weight(c, k) * s[k];
    y(b, c) = activate(act, acc);
  }
}
}  // namespace gpu

inline void causal_conv1d_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> x, TensorView<const float, 2, Cuda> weight,
                               TensorView<const float, 1, Cuda> bias, TensorView<float, 3, Cuda> y, Activation act,
                               TensorView<const float, 3, Cuda> initial_state, TensorView<float, 3, Cuda> final_state) {
  if (y.numel() > 0) {
    const int64_t rows = x.size(0) * ((x.size(1) + gpu::kConvTokens - 1) / gpu::kConvTokens);
    const dim3 grid(unsigned((x.size(2) + gpu::kConvChannels - 1) / gpu::kConvChannels),
                    unsigned(std::min<int64_t>(rows, 65535)));
    if (weight.size(1) <= gpu::kConvRegisterTaps) {
      gpu::causal_conv1d_registers_kernel<float>
          <<<grid, gpu::kConvChannels, 0, ctx.stream()>>>(x, weight, bias, y, act, initial_state);
    } else {
      const size_t smem = size_t(gpu::kConvTokens + weight.size(1) - 1) * gpu::kConvChannels * sizeof(float);
      gpu::allow_conv_tile_smem(ctx, gpu::causal_conv1d_kernel<float>, smem, weight.size(1), "causal_conv1d");
      gpu::causal_conv1d_kernel<float><<<grid, gpu::kConvChannels, smem, ctx.stream()>>>(x, weight, bias, y, act,
                                                                                         initial_state);
    }
    gpu::check_launch();
  }
  const int64_t rows = x.size(0) * x.size(2);
  if (present(final_state) && rows > 0) {
    gpu::conv_final_state_kernel<float>
        <<<gpu::grid_for(rows), gpu::kThreads, 0, ctx.stream()>>>(x, initial_state, final_state);
    gpu::check_launch();
  }
}

inline void causal_conv1d_step_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                    TensorView<const float, 2, Cuda> weight, TensorView<const float, 1, Cuda> bias,
                                    TensorView<float, 3, Cuda> state, TensorView<float, 2, Cuda> y, Activation act) {
  if (x.numel() == 0) return;
  gpu::causal_conv1d_step_kernel<float>
      <<<gpu::grid_for(x.numel()), gpu::kThreads, 0, ctx.stream()>>>(x, weight, bias, state, y, act);
  gpu::check_launch();
}

}  // namespace bimamba::detail
