// mamba2_decode_layers: one decode step of a stack of packed Bi-Mamba-2 blocks on the residual stream
// (Host, Cuda):
//
//   for each block i:  h += out_proj_i(gated_rms_norm_i(step_i(in_proj_i(rms_norm_i(h)))))        h: (B, D)
//
// in_proj / out_proj are FBI-Linear on sign bits (S (alpha ⊙ x) + (beta · x) 1), step_i the fused Mamba-2
// step (ops/mamba2_decode.hpp), which advances the block's conv and SSM state.
//
// On Cuda with one sequence, one group (G = 1), N % 4 == 0, sm_90 and a block's shared memory within the
// device's limit (mamba2_decode_layers_persistent says), every block runs in ONE cooperative launch per 64
// blocks (ops/cuda/mamba2_decode_layers.cuh): no launch per layer, the weights copied ahead into shared memory
// while the grid waits at its barriers. Otherwise, and on Host, it is the composition of
// binary_linear_rms_normed, mamba2_decode_step and binary_linear_rms_normed_accumulate (three ops a block).
// Both agree to float rounding; the persistent kernel is deterministic for a given number of SMs (its partial
// sums are per block, added in block order). max_blocks > 0 caps its grid (a testing and tuning knob).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../tensor/bit_tensor.hpp"
#include "binary_linear_fused.hpp"
#include "mamba2_decode.hpp"

namespace bimamba {

template <class Backend>
struct Mamba2BlockDecodeWeights {
  TensorView<const float, 1, Backend> norm_weight;  // (D) the block's RMSNorm
  float norm_eps = 1e-5f;
  BitTensorView<const uint32_t, Backend> in_signs;  // (R, D), R = 2E + 2GN + H
  TensorView<const float, 1, Backend> in_alpha, in_beta;  // (D)
  Mamba2DecodeWeights<Backend> step;                // norm_weight (E): the gated norm (required)
  BitTensorView<const uint32_t, Backend> out_signs;  // (D, E)
  TensorView<const float, 1, Backend> out_alpha, out_beta;  // (E)
  TensorView<float, 3, Backend> conv_state;  // (B, C, K)
  TensorView<float, 4, Backend> ssm_state;   // (B, H, P, N)
};

namespace detail {
// Checks one block against the residual stream (B, D); returns R.
template <class Backend>
int64_t check_decode_block(const Mamba2BlockDecodeWeights<Backend>& w, int64_t B, int64_t D, size_t i) {
  const auto& s = w.step;
  const int64_t H = s.heads, P = s.headdim, G = s.groups, N = s.d_state, E = H * P, C = E + 2 * G * N;
  const int64_t R = E + C + H;
  const std::string at = "mamba2_decode_layers: block " + std::to_string(i) + ": ";
  BIMAMBA_CHECK(present(s.norm_weight), at, "the gated norm weight is empty");
  check_shape(w.norm_weight, {D}, (at + "norm_weight").c_str());
  BIMAMBA_CHECK(w.in_signs.rows() == R && w.in_signs.cols() == D, at, "in_proj signs are ", w.in_signs.rows(), " x ",
                w.in_signs.cols(), ", expected ", R, " x ", D);
  check_shape(w.in_alpha, {D}, (at + "in_alpha").c_str());
  check_shape(w.in_beta, {D}, (at + "in_beta").c_str());
  BIMAMBA_CHECK(w.out_signs.rows() == D && w.out_signs.cols() == E, at, "out_proj signs are ", w.out_signs.rows(),
                " x ", w.out_signs.cols(), ", expected ", D, " x ", E);
  check_shape(w.out_alpha, {E}, (at + "out_alpha").c_str());
  check_shape(w.out_beta, {E}, (at + "out_beta").c_str());
  check_shape(w.conv_state, {B, C, w.step.conv_weight.size(1)}, (at + "conv_state").c_str());
  check_shape(w.ssm_state, {B, H, P, N}, (at + "ssm_state").c_str());
  return R;
}

// The per-block composition (Host; Cuda where the persistent kernel does not apply).
template <class Backend>
void decode_layers_composed(Context<Backend>& ctx, const std::vector<Mamba2BlockDecodeWeights<Backend>>& blocks,
                            TensorView<float, 2, Backend> residual) {
  const int64_t B = residual.size(0);
  for (const auto& w : blocks) {
    const int64_t E = w.step.heads * w.step.headdim, R = w.in_signs.rows();
    WorkspaceScope<Backend> scope(ctx.workspace());
    TensorView<float, 2, Backend> zx(ctx.workspace().template take<float>(size_t(B * R)), {B, R});
    TensorView<float, 2, Backend> y(ctx.workspace().template take<float>(size_t(B * E)), {B, E});
    binary_linear_rms_normed<Backend>(ctx, residual, w.norm_weight, w.norm_eps, w.in_signs, w.in_alpha, w.in_beta, zx);
    Mamba2DecodeWeights<Backend> step = w.step;
    const bool one_group = step.groups == 1;  // the gated norm is an RMSNorm over E: inside out_proj
    if (one_group) step.norm_weight = {};
    mamba2_decode_step<Backend>(ctx, step, zx, w.conv_state, w.ssm_state, y);
    if (one_group)
      binary_linear_rms_normed_accumulate<Backend>(ctx, y, w.step.norm_weight, w.step.norm_eps, w.out_signs,
                                                   w.out_alpha, w.out_beta, residual);
    else
      binary_linear_accumulate<Backend>(ctx, y, w.out_signs, w.out_alpha, w.out_beta, residual);
  }
}

// The persistent Cuda kernel's launch plan: blocks > 0 when it applies (ops/cuda/mamba2_decode_layers.cuh defines
// both for Cuda; they are never called for Host).
struct DecodeLayersPlan {
  int blocks = 0;
  int64_t smem = 0;  // dynamic shared memory per block, bytes
  int pitch = 0;     // the lookup table's pitch for rows above 128 words (ops/cuda/mamba2_decode_layers.cuh)
  // Profiling, when set: device memory of (1 + layers kDecodePhases, blocks) %globaltimer stamps (ns), the
  // launch's start and the end of each phase of each layer (ops/cuda/mamba2_decode_layers.cuh, DecodePhase). A
  // second launch (past 64 layers) writes its start over the first launch's last stamp.
  unsigned long long* stamps = nullptr;
};
template <class Backend>
DecodeLayersPlan decode_layers_plan(Context<Backend>& ctx, const std::vector<Mamba2BlockDecodeWeights<Backend>>& blocks,
                                    TensorView<const float, 2, Backend> residual, int max_blocks);
template <class Backend>
void decode_layers_persistent(Context<Backend>& ctx, const std::vector<Mamba2BlockDecodeWeights<Backend>>& blocks,
                              TensorView<float, 2, Backend> residual, const DecodeLayersPlan& plan);
}  // namespace detail

}  // namespace bimamba

#if defined(__CUDACC__) && __has_include("cuda/mamba2_decode_layers.cuh")
#include "cuda/mamba2_decode_layers.cuh"
#endif

namespace bimamba {

// Whether mamba2_decode_layers runs these blocks as the persistent Cuda kernel (never on Host).
template <class Backend>
bool mamba2_decode_layers_persistent(Context<Backend>& ctx, const std::vector<Mamba2BlockDecodeWeights<Backend>>& blocks,
                                     View<const float, 2, Backend> residual, int max_blocks = 0) {
  if constexpr (std::is_same_v<Backend, Host>) {
    (void)ctx, (void)blocks, (void)residual, (void)max_blocks;
    return false;
  } else {
    return detail::decode_layers_plan(ctx, blocks, residual, max_blocks).blocks > 0;
  }
}

template <class Backend>
void mamba2_decode_layers(Context<Backend>& ctx, const std::vector<Mamba2BlockDecodeWeights<Backend>>& blocks,
                          View<float, 2, Backend> residual,  // (B, D)
                          int max_blocks = 0) {
  const int64_t B = residual.size(0), D = residual.size(1);
  for (size_t i = 0; i < blocks.size(); ++i) detail::check_decode_block(blocks[i], B, D, i);
  if constexpr (!std::is_same_v<Backend, Host>) {
    const detail::DecodeLayersPlan plan =
        detail::decode_layers_plan(ctx, blocks, TensorView<const float, 2, Backend>(residual), max_blocks);
    if (plan.blocks > 0) {
      detail::decode_layers_persistent(ctx, blocks, residual, plan);
      return;
    }
  }
  (void)max_blocks;
  detail::decode_layers_composed(ctx, blocks, residual);
}

}  // namespace bimamba
