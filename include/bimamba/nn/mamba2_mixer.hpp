// Mamba2Mixer<Backend>: the Mamba-2 token mixer (DESIGN.md, "The math"); with binary projections it is the
// Bi-Mamba mixer. Parameters (HF names under <prefix> = backbone.layers.<i>.mixer):
//   in_proj (R = 2E + 2GN + H, D) [+ wscale/wbias (1, D) when binary], conv1d.weight (C, 1, K), conv1d.bias (C)
//   with C = E + 2GN, dt_bias (H), A_log (H), D (H), norm.weight (E), out_proj (D, E) [+ wscale/wbias (1, E)].
//
//   zxbcdt = in_proj(u)                     rows [z (E) | x (E) | B (GN) | C (GN) | dt (H)]
//   xBC    = silu(conv1d(x|B|C))            (prefill: causal over L; step: rolling state)
//   dt     = clamp(softplus(dt + dt_bias), dt_limit);  A = -exp(A_log)
//   y      = SSM(x, dt, A, B, C) + D x      (prefill: chunked SSD scan, chunk_size; step: recurrence)
//   out    = out_proj(gated_rms_norm(y, z))
// forward: u (B, L, D) -> out (B, L, D); step: u (B, D) -> out (B, D). With a MixerState the prefill
// starts from it and leaves it at the end of the sequence (fresh states are zeros, which is the same as
// none), and the step advances it by one token. Scratch memory comes from ctx.workspace().
// Padding (prefill only): with a mask (B, L) (1 = token, 0 = padding) the conv output is zeroed at padding
// positions, so they add nothing to the SSM state (HF's apply_mask_to_padding_states); the caller zeroes
// the mixer input u there too (LanguageModel does).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "../model/config.hpp"
#include "../ops/apply_mask.hpp"
#include "../ops/dt_softplus.hpp"
#include "../ops/mamba2_decode.hpp"
#include "../ops/mamba2_decode_layers.hpp"
#include "../ops/neg_exp.hpp"
#include "../ops/ssd_scan.hpp"
#include "../ops/ssd_step.hpp"
#include "causal_conv1d.hpp"
#include "mixer_state.hpp"
#include "projection.hpp"
#include "rms_norm.hpp"

namespace bimamba {

template <class Backend>
class Mamba2Mixer {
 public:
  // latent_binary = false: binary projections are inference-only (no latent weights; BinaryLinear).
  void declare(ParamStore<Backend>& store, const std::string& prefix, const ModelConfig& cfg, bool latent_binary = true) {
    D_ = cfg.d_model, E_ = cfg.d_inner(), H_ = cfg.nheads(), P_ = cfg.headdim, G_ = cfg.ngroups, N_ = cfg.d_state;
    C_ = cfg.conv_dim(), R_ = cfg.in_proj_rows(), K_ = cfg.d_conv;
    chunk_size_ = cfg.chunk_size;
    dt_lo_ = float(cfg.dt_limit_min), dt_hi_ = float(cfg.dt_limit_max);
    BIMAMBA_CHECK(!cfg.norm_before_gate, prefix, ": norm_before_gate = true is not supported");
    in_proj_.declare(store, prefix + ".in_proj", D_, R_, cfg.proj_bias, cfg.binary, latent_binary);
    conv_.declare(store, prefix + ".conv1d", C_, K_, cfg.conv_bias);
    dt_bias_id_ = store.declare(prefix + ".dt_bias", {H_}, ParamGroup::NoDecay);
    a_log_id_ = store.declare(prefix + ".A_log", {H_}, ParamGroup::NoDecay);
    d_id_ = store.declare(prefix + ".D", {H_}, ParamGroup::NoDecay);
    norm_.declare(store, prefix + ".norm", E_, G_, float(cfg.norm_eps));
    out_proj_.declare(store, prefix + ".out_proj", E_, D_, cfg.proj_bias, cfg.binary, latent_binary);
  }
  void bind(ParamStore<Backend>& store) {
    in_proj_.bind(store);
    conv_.bind(store);
    dt_bias_ = store.template param<1>(dt_bias_id_);
    a_log_ = store.template param<1>(a_log_id_);
    d_ = store.template param<1>(d_id_);
    norm_.bind(store);
    out_proj_.bind(store);
  }

  void forward(Context<Backend>& ctx, View<const float, 3, Backend> u, View<float, 3, Backend> out,
               MixerState<Backend> state = {}, View<const float, 2, Backend> mask = {}) const {
    const int64_t B = u.size(0), L = u.size(1), T = B * L;
    check_shape(u, {B, L, D_}, "Mamba2Mixer: u");
    check_shape(out, {B, L, D_}, "Mamba2Mixer: out");
    check_state(state, B);
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    float* zxbcdt = ws.template take<float>(size_t(T * R_));  // (T, R)
    float* xbc = ws.template take<float>(size_t(T * C_));     // (B, L, C)
    float* dt = ws.template take<float>(size_t(T * H_));      // (T, H)
    float* A = ws.template take<float>(size_t(H_));           // (H)
    float* y = ws.template take<float>(size_t(T * E_));       // (T, E)

    in_proj_.forward(ctx, u.template reshape<2>({T, D_}), TensorView<float, 2, Backend>(zxbcdt, {T, R_}));
    conv_.forward(ctx, TensorView<const float, 3, Backend>(zxbcdt + E_, {B, L, C_}, {L * R_, R_, 1}),
                  TensorView<float, 3, Backend>(xbc, {B, L, C_}), state.conv);
    if (present(mask)) apply_mask(ctx, mask, TensorView<float, 3, Backend>(xbc, {B, L, C_}));
    dt_softplus(ctx, TensorView<const float, 2, Backend>(zxbcdt + E_ + C_, {T, H_}, {R_, 1}), dt_bias_, dt_lo_, dt_hi_,
                TensorView<float, 2, Backend>(dt, {T, H_}));
    neg_exp(ctx, a_log_, TensorView<float, 1, Backend>(A, {H_}));
    TensorView<float, 4, Backend> ssm;
    if (present(state.ssm)) ssm = state.ssm.template reshape<4>({B, H_, P_, N_});
    ssd_scan(ctx, TensorView<const float, 4, Backend>(xbc, {B, L, H_, P_}, {L * C_, C_, P_, 1}),
             TensorView<const float, 3, Backend>(dt, {B, L, H_}), TensorView<const float, 1, Backend>(A, {H_}),
             TensorView<const float, 4, Backend>(xbc + E_, {B, L, G_, N_}, {L * C_, C_, N_, 1}),
             TensorView<const float, 4, Backend>(xbc + E_ + G_ * N_, {B, L, G_, N_}, {L * C_, C_, N_, 1}), d_,
             chunk_size_, TensorView<float, 4, Backend>(y, {B, L, H_, P_}), ssm, ssm);
    finish(ctx, zxbcdt, y, T, out.template reshape<2>({T, D_}));
  }

  void step(Context<Backend>& ctx, View<const float, 2, Backend> u, View<float, 2, Backend> out,
            MixerState<Backend> state) const {
    const int64_t B = u.size(0);
    check_shape(u, {B, D_}, "Mamba2Mixer::step: u");
    check_shape(out, {B, D_}, "Mamba2Mixer::step: out");
    BIMAMBA_CHECK(present(state.conv) && present(state.ssm), "Mamba2Mixer::step needs a state");
    check_state(state, B);
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    float* zxbcdt = ws.template take<float>(size_t(B * R_));  // (B, R)
    if (fused_step_) {
      float* y = ws.template take<float>(size_t(B * E_));  // (B, E)
      in_proj_.forward(ctx, u, TensorView<float, 2, Backend>(zxbcdt, {B, R_}));
      fused_decode(ctx, zxbcdt, state, y);
      out_proj_.forward(ctx, TensorView<const float, 2, Backend>(y, {B, E_}), out);
      return;
    }
    float* xbc = ws.template take<float>(size_t(B * C_));     // (B, C)
    float* dt = ws.template take<float>(size_t(B * H_));      // (B, H)
    float* A = ws.template take<float>(size_t(H_));           // (H)
    float* y = ws.template take<float>(size_t(B * E_));       // (B, E)

    in_proj_.forward(ctx, u, TensorView<float, 2, Backend>(zxbcdt, {B, R_}));
    conv_.step(ctx, TensorView<const float, 2, Backend>(zxbcdt + E_, {B, C_}, {R_, 1}), state.conv,
               TensorView<float, 2, Backend>(xbc, {B, C_}));
    dt_softplus(ctx, TensorView<const float, 2, Backend>(zxbcdt + E_ + C_, {B, H_}, {R_, 1}), dt_bias_, dt_lo_, dt_hi_,
                TensorView<float, 2, Backend>(dt, {B, H_}));
    neg_exp(ctx, a_log_, TensorView<float, 1, Backend>(A, {H_}));
    ssd_step(ctx, TensorView<const float, 3, Backend>(xbc, {B, H_, P_}, {C_, P_, 1}),
             TensorView<const float, 2, Backend>(dt, {B, H_}), TensorView<const float, 1, Backend>(A, {H_}),
             TensorView<const float, 3, Backend>(xbc + E_, {B, G_, N_}, {C_, N_, 1}),
             TensorView<const float, 3, Backend>(xbc + E_ + G_ * N_, {B, G_, N_}, {C_, N_, 1}), d_,
             state.ssm.template reshape<4>({B, H_, P_, N_}), TensorView<float, 3, Backend>(y, {B, H_, P_}));
    finish(ctx, zxbcdt, y, B, out);
  }

  // The decode step of a whole block on the residual stream: residual (B, D) += step(rms_norm(residual)).
  // With the fused step the norm runs inside in_proj and the add inside out_proj (Projection::
  // forward_rms_normed / forward_accumulate: on Cuda one launch each for packed projections), so a block is
  // three launches; with one norm group the mixer's gated norm is an RMSNorm of the gated output over all E
  // channels and runs inside out_proj too (forward_rms_normed_accumulate), so the step kernel has no
  // block-wide norm to wait for. Otherwise norm, step and add run in turn.
  void step_residual(Context<Backend>& ctx, View<float, 2, Backend> residual, View<const float, 1, Backend> norm_weight,
                     float eps, MixerState<Backend> state) const {
    const int64_t B = residual.size(0);
    check_shape(residual, {B, D_}, "Mamba2Mixer::step_residual: residual");
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    if (!fused_step_) {
      TensorView<float, 2, Backend> normed(ws.template take<float>(size_t(B * D_)), {B, D_});
      TensorView<float, 2, Backend> mixed(ws.template take<float>(size_t(B * D_)), {B, D_});
      rms_norm(ctx, residual, norm_weight, eps, normed);
      step(ctx, normed, mixed, state);
      add(ctx, mixed, residual);
      return;
    }
    BIMAMBA_CHECK(present(state.conv) && present(state.ssm), "Mamba2Mixer::step_residual needs a state");
    check_state(state, B);
    float* zxbcdt = ws.template take<float>(size_t(B * R_));  // (B, R)
    float* y = ws.template take<float>(size_t(B * E_));       // (B, E)
    in_proj_.forward_rms_normed(ctx, residual, norm_weight, eps, TensorView<float, 2, Backend>(zxbcdt, {B, R_}));
    const bool norm_in_out_proj = G_ == 1;
    fused_decode(ctx, zxbcdt, state, y, !norm_in_out_proj);
    const TensorView<const float, 2, Backend> yv(y, {B, E_});
    if (norm_in_out_proj) out_proj_.forward_rms_normed_accumulate(ctx, yv, norm_.weight(), norm_.eps(), residual);
    else out_proj_.forward_accumulate(ctx, yv, residual);
  }

  // The fused step's weights (ops/mamba2_decode.hpp), the gated norm's included.
  Mamba2DecodeWeights<Backend> decode_weights() const {
    return {conv_.weight(), conv_.bias(), dt_bias_, a_log_, d_, norm_.weight(), H_, P_, G_, N_, norm_.eps(),
            dt_lo_, dt_hi_};
  }
  // The whole block for ops/mamba2_decode_layers.hpp, with its RMSNorm (norm_weight, eps) and state; needs
  // packed projections.
  Mamba2BlockDecodeWeights<Backend> decode_block(View<const float, 1, Backend> norm_weight, float eps,
                                                 MixerState<Backend> state) const {
    BIMAMBA_CHECK(in_proj_.packed() && out_proj_.packed(), "Mamba2Mixer::decode_block needs packed projections");
    const int64_t B = state.conv.size(0);
    check_state(state, B);
    const BinaryLinear<Backend>& in = in_proj_.fbi();
    const BinaryLinear<Backend>& out = out_proj_.fbi();
    return {norm_weight, eps, in.signs().cview(), in.alpha(), in.beta(), decode_weights(), out.signs().cview(),
            out.alpha(), out.beta(), state.conv, state.ssm.template reshape<4>({B, H_, P_, N_})};
  }

  // Sizes of one sequence's state: conv (C, K), ssm H * P * N.
  int64_t conv_channels() const { return C_; }
  int64_t ssm_size() const { return H_ * P_ * N_; }

  void set_chunk_size(int64_t q) {
    BIMAMBA_CHECK(q > 0, "Mamba2Mixer: chunk size must be positive, got ", q);
    chunk_size_ = q;
  }
  void pack() { in_proj_.pack(), out_proj_.pack(); }
  void unpack() { in_proj_.unpack(), out_proj_.unpack(); }
  void set_tiled(bool on) { in_proj_.set_tiled(on), out_proj_.set_tiled(on); }
  // The step through ops/mamba2_decode.hpp (one fused op) instead of five ops; on by default on Cuda.
  void set_fused_step(bool on) { fused_step_ = on; }
  bool fused_step() const { return fused_step_; }
  const Projection<Backend>& in_proj() const { return in_proj_; }
  const Projection<Backend>& out_proj() const { return out_proj_; }
  Projection<Backend>& in_proj() { return in_proj_; }
  Projection<Backend>& out_proj() { return out_proj_; }
  const CausalConv1d<Backend>& conv1d() const { return conv_; }
  const GatedRMSNorm<Backend>& norm() const { return norm_; }
  TensorView<float, 1, Backend> dt_bias() const { return dt_bias_; }
  TensorView<float, 1, Backend> A_log() const { return a_log_; }
  TensorView<float, 1, Backend> D() const { return d_; }

 private:
  // zxbcdt (B, R) -> y (B, E) through ops/mamba2_decode.hpp, advancing the state; without `norm`, y is the
  // gated output before the gated norm.
  void fused_decode(Context<Backend>& ctx, const float* zxbcdt, MixerState<Backend> state, float* y,
                    bool norm = true) const {
    const int64_t B = state.conv.size(0);
    Mamba2DecodeWeights<Backend> w = decode_weights();
    if (!norm) w.norm_weight = {};  // y: the gated output before the norm
    mamba2_decode_step(ctx, w, TensorView<const float, 2, Backend>(zxbcdt, {B, R_}), state.conv,
                       state.ssm.template reshape<4>({B, H_, P_, N_}), TensorView<float, 2, Backend>(y, {B, E_}));
  }

  void check_state(const MixerState<Backend>& state, int64_t B) const {
    if (present(state.conv)) check_shape(state.conv, {B, C_, K_}, "Mamba2Mixer: conv state");
    if (present(state.ssm)) check_shape(state.ssm, {B, H_ * P_ * N_}, "Mamba2Mixer: ssm state");
  }
  // y (T, E) <- gated_rms_norm(y, z); out (T, D) = out_proj(y).
  void finish(Context<Backend>& ctx, const float* zxbcdt, float* y, int64_t T, TensorView<float, 2, Backend> out) const {
    TensorView<float, 2, Backend> yv(y, {T, E_});
    norm_.forward(ctx, yv, TensorView<const float, 2, Backend>(zxbcdt, {T, E_}, {R_, 1}), yv);
    out_proj_.forward(ctx, yv, out);
  }

  int64_t D_ = 0, E_ = 0, H_ = 0, P_ = 0, G_ = 0, N_ = 0, C_ = 0, R_ = 0, K_ = 0, chunk_size_ = 256;
  float dt_lo_ = 0.0f, dt_hi_ = 0.0f;
  bool fused_step_ = !std::is_same_v<Backend, Host>;
  Projection<Backend> in_proj_, out_proj_;
  CausalConv1d<Backend> conv_;
  GatedRMSNorm<Backend> norm_;
  int dt_bias_id_ = -1, a_log_id_ = -1, d_id_ = -1;
  TensorView<float, 1, Backend> dt_bias_, a_log_, d_;
};

}  // namespace bimamba
