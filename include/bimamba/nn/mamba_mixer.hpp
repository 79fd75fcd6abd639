// MambaMixer<Backend>: the Mamba-1 token mixer (DESIGN.md). Parameters (HF names under <prefix>):
//   in_proj.weight (2E, D), conv1d.weight (E, 1, K), conv1d.bias (E), x_proj.weight (R + 2N, E) with
//   R = dt_rank, dt_proj.weight (E, R), dt_proj.bias (E), A_log (E, N), D (E), out_proj.weight (D, E).
//
//   x | z  = in_proj(u)                       rows [x (E) | z (E)]
//   x      = silu(conv1d(x))
//   dt | B | C = x_proj(x)                    rows [dt (R) | B (N) | C (N)]
//   dt     = softplus(dt_proj(dt))            (dt_proj's bias inside the softplus)
//   y      = (SSM(x, dt, A = -exp(A_log), B, C) + D x) * silu(z)   (selective scan / its step)
//   out    = out_proj(y)
// forward: u (B, L, D) -> out (B, L, D); step: u (B, D) -> out (B, D); MixerState as in Mamba2Mixer
// (ssm viewed (B, E, N)). Padding (prefill only): with a mask (B, L) (1 = token, 0 = padding) the conv input
// x and the conv output are zeroed at padding positions (HF's MambaMixer), so they add nothing to the state.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "../model/config.hpp"
#include "../ops/apply_mask.hpp"
#include "../ops/dt_softplus.hpp"
#include "../ops/neg_exp.hpp"
#include "../ops/selective_scan.hpp"
#include "causal_conv1d.hpp"
#include "linear.hpp"
#include "mixer_state.hpp"
#include "projection.hpp"

namespace bimamba {

template <class Backend>
class MambaMixer {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, const ModelConfig& cfg) {
    D_ = cfg.d_model, E_ = cfg.d_inner(), N_ = cfg.d_state, R_ = cfg.dt_rank, K_ = cfg.d_conv;
    in_proj_.declare(store, prefix + ".in_proj", D_, 2 * E_, cfg.proj_bias, false);
    conv_.declare(store, prefix + ".conv1d", E_, K_, cfg.conv_bias);
    x_proj_.declare(store, prefix + ".x_proj", E_, R_ + 2 * N_, false);
    dt_proj_.declare(store, prefix + ".dt_proj", R_, E_, true);
    a_log_id_ = store.declare(prefix + ".A_log", {E_, N_}, ParamGroup::NoDecay);
    d_id_ = store.declare(prefix + ".D", {E_}, ParamGroup::NoDecay);
    out_proj_.declare(store, prefix + ".out_proj", E_, D_, cfg.proj_bias, false);
  }
  void bind(ParamStore<Backend>& store) {
    in_proj_.bind(store);
    conv_.bind(store);
    x_proj_.bind(store);
    dt_proj_.bind(store);
    a_log_ = store.template param<2>(a_log_id_);
    d_ = store.template param<1>(d_id_);
    out_proj_.bind(store);
  }

  void forward(Context<Backend>& ctx, View<const float, 3, Backend> u, View<float, 3, Backend> out,
               MixerState<Backend> state = {}, View<const float, 2, Backend> mask = {}) const {
    const int64_t B = u.size(0), L = u.size(1), T = B * L, X = R_ + 2 * N_;
    check_shape(u, {B, L, D_}, "MambaMixer: u");
    check_shape(out, {B, L, D_}, "MambaMixer: out");
    check_state(state, B);
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    float* xz = ws.template take<float>(size_t(T * 2 * E_));  // (T, 2E)
    float* xc = ws.template take<float>(size_t(T * E_));      // (B, L, E)
    float* xdbl = ws.template take<float>(size_t(T * X));     // (T, R + 2N)
    float* dtl = ws.template take<float>(size_t(T * E_));     // (T, E)
    float* dt = ws.template take<float>(size_t(T * E_));      // (T, E)
    float* A = ws.template take<float>(size_t(E_ * N_));      // (E, N)
    float* y = ws.template take<float>(size_t(T * E_));       // (B, L, E)

    in_proj_.forward(ctx, u.template reshape<2>({T, D_}), TensorView<float, 2, Backend>(xz, {T, 2 * E_}));
    if (present(mask)) apply_mask(ctx, mask, TensorView<float, 3, Backend>(xz, {B, L, E_}, {L * 2 * E_, 2 * E_, 1}));
    conv_.forward(ctx, TensorView<const float, 3, Backend>(xz, {B, L, E_}, {L * 2 * E_, 2 * E_, 1}),
                  TensorView<float, 3, Backend>(xc, {B, L, E_}), state.conv);
    if (present(mask)) apply_mask(ctx, mask, TensorView<float, 3, Backend>(xc, {B, L, E_}));
    time_step(ctx, TensorView<const float, 2, Backend>(xc, {T, E_}), xdbl, dtl, dt, A, T);
    TensorView<float, 3, Backend> ssm;
    if (present(state.ssm)) ssm = state.ssm.template reshape<3>({B, E_, N_});
    selective_scan(ctx, TensorView<const float, 3, Backend>(xc, {B, L, E_}),
                   TensorView<const float, 3, Backend>(dt, {B, L, E_}), TensorView<const float, 2, Backend>(A, {E_, N_}),
                   TensorView<const float, 3, Backend>(xdbl + R_, {B, L, N_}, {L * X, X, 1}),
                   TensorView<const float, 3, Backend>(xdbl + R_ + N_, {B, L, N_}, {L * X, X, 1}), d_,
                   TensorView<const float, 3, Backend>(xz + E_, {B, L, E_}, {L * 2 * E_, 2 * E_, 1}),
                   TensorView<float, 3, Backend>(y, {B, L, E_}), ssm, ssm);
    out_proj_.forward(ctx, TensorView<const float, 2, Backend>(y, {T, E_}), out.template reshape<2>({T, D_}));
  }

  void step(Context<Backend>& ctx, View<const float, 2, Backend> u, View<float, 2, Backend> out,
            MixerState<Backend> state) const {
    const int64_t B = u.size(0), X = R_ + 2 * N_;
    check_shape(u, {B, D_}, "MambaMixer::step: u");
    check_shape(out, {B, D_}, "MambaMixer::step: out");
    BIMAMBA_CHECK(present(state.conv) && present(state.ssm), "MambaMixer::step needs a state");
    check_state(state, B);
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    float* xz = ws.template take<float>(size_t(B * 2 * E_));  // (B, 2E)
    float* xc = ws.template take<float>(size_t(B * E_));      // (B, E)
    float* xdbl = ws.template take<float>(size_t(B * X));     // (B, R + 2N)
    float* dtl = ws.template take<float>(size_t(B * E_));     // (B, E)
    float* dt = ws.template take<float>(size_t(B * E_));      // (B, E)
    float* A = ws.template take<float>(size_t(E_ * N_));      // (E, N)
    float* y = ws.template take<float>(size_t(B * E_));       // (B, E)

    in_proj_.forward(ctx, u, TensorView<float, 2, Backend>(xz, {B, 2 * E_}));
    conv_.step(ctx, TensorView<const float, 2, Backend>(xz, {B, E_}, {2 * E_, 1}), state.conv,
               TensorView<float, 2, Backend>(xc, {B, E_}));
    time_step(ctx, TensorView<const float, 2, Backend>(xc, {B, E_}), xdbl, dtl, dt, A, B);
    selective_scan_step(ctx, TensorView<const float, 2, Backend>(xc, {B, E_}),
                        TensorView<const float, 2, Backend>(dt, {B, E_}),
                        TensorView<const float, 2, Backend>(A, {E_, N_}),
                        TensorView<const float, 2, Backend>(xdbl + R_, {B, N_}, {X, 1}),
                        TensorView<const float, 2, Backend>(xdbl + R_ + N_, {B, N_}, {X, 1}), d_,
                        TensorView<const float, 2, Backend>(xz + E_, {B, E_}, {2 * E_, 1}),
                        state.ssm.template reshape<3>({B, E_, N_}), TensorView<float, 2, Backend>(y, {B, E_}));
    out_proj_.forward(ctx, TensorView<const float, 2, Backend>(y, {B, E_}), out);
  }

  int64_t conv_channels() const { return E_; }
  int64_t ssm_size() const { return E_ * N_; }

  const Projection<Backend>& in_proj() const { return in_proj_; }
  const Projection<Backend>& out_proj() const { return out_proj_; }
  const CausalConv1d<Backend>& conv1d() const { return conv_; }
  const Linear<Backend>& x_proj() const { return x_proj_; }
  const Linear<Backend>& dt_proj() const { return dt_proj_; }
  TensorView<float, 2, Backend> A_log() const { return a_log_; }
  TensorView<float, 1, Backend> D() const { return d_; }

 private:
  void check_state(const MixerState<Backend>& state, int64_t B) const {
    if (present(state.conv)) check_shape(state.conv, {B, E_, K_}, "MambaMixer: conv state");
    if (present(state.ssm)) check_shape(state.ssm, {B, E_ * N_}, "MambaMixer: ssm state");
  }
  // From the conv output x (T, E): xdbl = x_proj(x) (T, R + 2N), dt = softplus(dt_proj(xdbl[:, :R])) (T, E),
  // A = -exp(A_log) (E, N).
  void time_step(Context<Backend>& ctx, TensorView<const float, 2, Backend> x, float* xdbl, float* dtl, float* dt,
                 float* A, int64_t T) const {
    const int64_t X = R_ + 2 * N_;
    x_proj_.forward(ctx, x, TensorView<float, 2, Backend>(xdbl, {T, X}));
    linear(ctx, TensorView<const float, 2, Backend>(xdbl, {T, R_}, {X, 1}), dt_proj_.weight(), {},
           TensorView<float, 2, Backend>(dtl, {T, E_}));
    dt_softplus(ctx, TensorView<const float, 2, Backend>(dtl, {T, E_}), dt_proj_.bias(), 0.0f,
                std::numeric_limits<float>::infinity(), TensorView<float, 2, Backend>(dt, {T, E_}));
    neg_exp(ctx, a_log_.template reshape<1>({E_ * N_}), TensorView<float, 1, Backend>(A, {E_ * N_}));
  }

  int64_t D_ = 0, E_ = 0, N_ = 0, R_ = 0, K_ = 0;
  Projection<Backend> in_proj_, out_proj_;
  CausalConv1d<Backend> conv_;
  Linear<Backend> x_proj_, dt_proj_;
  int a_log_id_ = -1, d_id_ = -1;
  TensorView<float, 2, Backend> a_log_;
  TensorView<float, 1, Backend> d_;
};

}  // namespace bimamba
