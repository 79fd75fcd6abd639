// Training forward and backward of one Mamba-2 / Bi-Mamba mixer (nn/mamba2_mixer.hpp), from a zero state and
// without padding masks (a training window is a fresh sequence).
//
//   forward (the mixer's math, keeping what backward needs in Mamba2Saved):
//     zxbcdt = in_proj(u)  (T, R)        xbc = silu(conv1d(x|B|C))  (B, L, C)
//     dt = clamp(softplus(dt_raw + dt_bias))  (T, H)     A = -exp(A_log)  (H)
//     y = ssd(x, dt, A, B, C) + D x  (T, E)               yn = gated_rms_norm(y, z)  (T, E)
//     out = out_proj(yn)  (T, D)
//   backward, in reverse: out_proj -> gated norm (dy, dz) -> scan (dx, ddt, dA, dB, dC, dD) -> A_log
//     (dA_log = dA A) -> dt (ddt_raw, ddt_bias, zero where clamped) -> conv1d (dxBC_raw, dw, dbias) ->
//     in_proj (du and its weights; FBI-Linear with the identity straight-through estimator).
// Parameter gradients always Accumulate into the ParamStore's grads (the model zeroes them for Overwrite);
// du is Overwritten. Saved per mixer: zxbcdt (T R), xbc (T C), dt (T H), A (H), y and yn (T E) floats; the
// scan states are recomputed by the backward, not saved. Backward scratch comes from ctx.workspace().
// Each op runs inside a ProfileRange (core/profile_range.hpp) named after it: in_proj, conv1d, dt, ssd_scan,
// gated_norm, out_proj.
#pragma once

#include <cstdint>

#include "../core/profile_range.hpp"
#include "../model/config.hpp"
#include "../nn/mamba2_mixer.hpp"
#include "../ops/causal_conv1d_backward.hpp"
#include "../ops/dt_softplus_backward.hpp"
#include "../ops/fbi_linear_backward.hpp"
#include "../ops/gated_rms_norm_backward.hpp"
#include "../ops/linear_backward.hpp"
#include "../ops/neg_exp_backward.hpp"
#include "../ops/ssd_scan_backward.hpp"
#include "grad_view.hpp"

namespace bimamba {

template <class Backend>
struct Mamba2Saved {
  Tensor<float, 2, Backend> zxbcdt;  // (T, R) in_proj output: [z | x B C (before the conv) | dt_raw]
  Tensor<float, 3, Backend> xbc;     // (B, L, C) after conv + SiLU
  Tensor<float, 2, Backend> dt;      // (T, H) after softplus and clamp
  Tensor<float, 1, Backend> A;       // (H)
  Tensor<float, 2, Backend> y;       // (T, E) scan output (before the gated norm)
  Tensor<float, 2, Backend> yn;      // (T, E) gated norm output (out_proj's input)
};

// Gradients of a projection y = proj(x): dx (T, in) Overwritten, parameter gradients Accumulate into store.
template <class Backend>
void projection_backward(Context<Backend>& ctx, const Projection<Backend>& proj, ParamStore<Backend>& store,
                         View<const float, 2, Backend> x, View<const float, 2, Backend> dy, View<float, 2, Backend> dx) {
  BIMAMBA_CHECK(!proj.packed(), "projection_backward: the projection is packed; unpack() to train the latent weights");
  if (proj.binary()) {
    const auto& f = proj.fbi();
    fbi_linear_backward(ctx, x, f.weight(), f.alpha(), f.beta(), dy, dx, grad_of(store, f.weight()),
                        grad_of(store, f.alpha()), grad_of(store, f.beta()), GradientMode::Overwrite,
                        GradientMode::Accumulate);
  } else {
    const auto& l = proj.dense();
    linear_backward(ctx, x, l.weight(), dy, dx, {}, {}, GradientMode::Overwrite);
    linear_backward(ctx, x, l.weight(), dy, {}, grad_of(store, l.weight()), grad_of(store, l.bias()),
                    GradientMode::Accumulate);
  }
}

// u (B, L, D) -> out (B, L, D), filling saved.
template <class Backend>
void mamba2_forward_train(Context<Backend>& ctx, const Mamba2Mixer<Backend>& m, const ModelConfig& cfg,
                          View<const float, 3, Backend> u, View<float, 3, Backend> out, Mamba2Saved<Backend>& s) {
  const int64_t B = u.size(0), L = u.size(1), T = B * L, D = cfg.d_model, E = cfg.d_inner(), H = cfg.nheads(),
                P = cfg.headdim, G = cfg.ngroups, N = cfg.d_state, C = cfg.conv_dim(), R = cfg.in_proj_rows();
  s.zxbcdt = Tensor<float, 2, Backend>({T, R});
  s.xbc = Tensor<float, 3, Backend>({B, L, C});
  s.dt = Tensor<float, 2, Backend>({T, H});
  s.A = Tensor<float, 1, Backend>({H});
  s.y = Tensor<float, 2, Backend>({T, E});
  s.yn = Tensor<float, 2, Backend>({T, E});
  const float* zx = s.zxbcdt.data();
  const float* xbc = s.xbc.data();
  {
    ProfileRange<Backend> range(ctx, "in_proj");
    m.in_proj().forward(ctx, u.template reshape<2>({T, D}), s.zxbcdt.view());
  }
  {
    ProfileRange<Backend> range(ctx, "conv1d");
    m.conv1d().forward(ctx, TensorView<const float, 3, Backend>(zx + E, {B, L, C}, {L * R, R, 1}), s.xbc.view());
  }
  {
    ProfileRange<Backend> range(ctx, "dt");
    dt_softplus(ctx, TensorView<const float, 2, Backend>(zx + E + C, {T, H}, {R, 1}), m.dt_bias(),
                float(cfg.dt_limit_min), float(cfg.dt_limit_max), s.dt.view());
    neg_exp(ctx, m.A_log(), s.A.view());
  }
  {
    ProfileRange<Backend> range(ctx, "ssd_scan");
    ssd_scan(ctx, TensorView<const float, 4, Backend>(xbc, {B, L, H, P}, {L * C, C, P, 1}),
             s.dt.cview().template reshape<3>({B, L, H}), s.A.cview(),
             TensorView<const float, 4, Backend>(xbc + E, {B, L, G, N}, {L * C, C, N, 1}),
             TensorView<const float, 4, Backend>(xbc + E + G * N, {B, L, G, N}, {L * C, C, N, 1}), m.D(),
             cfg.chunk_size, s.y.view().template reshape<4>({B, L, H, P}));
  }
  {
    ProfileRange<Backend> range(ctx, "gated_norm");
    m.norm().forward(ctx, s.y.cview(), TensorView<const float, 2, Backend>(zx, {T, E}, {R, 1}), s.yn.view());
  }
  ProfileRange<Backend> range(ctx, "out_proj");
  m.out_proj().forward(ctx, s.yn.cview(), out.template reshape<2>({T, D}));
}

// dout (B, L, D) -> du (B, L, D) (Overwritten); parameter gradients Accumulate into store. The activation
// gradients live in workspace scratch, each written by exactly one op under GradientModes{Overwrite, Accumulate}
// (its input gradients overwritten, its parameter gradients accumulated): nothing zeroed, no old value read. (With
// zeroed scratch and Accumulate everywhere, the 780M shape at batch 4 wrote 0.5 GB of zeros a layer and read 0.4 GB
// of them back: bench/RESULTS_CUDA.md, session 21.)
template <class Backend>
void mamba2_backward(Context<Backend>& ctx, const Mamba2Mixer<Backend>& m, const ModelConfig& cfg,
                     ParamStore<Backend>& store, View<const float, 3, Backend> u, const Mamba2Saved<Backend>& s,
                     View<const float, 3, Backend> dout, View<float, 3, Backend> du) {
  const int64_t B = u.size(0), L = u.size(1), T = B * L, D = cfg.d_model, E = cfg.d_inner(), H = cfg.nheads(),
                P = cfg.headdim, G = cfg.ngroups, N = cfg.d_state, C = cfg.conv_dim(), R = cfg.in_proj_rows();
  const auto acc = GradientMode::Accumulate;
  const GradientModes put{GradientMode::Overwrite, acc};
  auto& ws = ctx.workspace();
  WorkspaceScope<Backend> scope(ws);
  float* base = ws.template take<float>(size_t(2 * T * E + T * R + T * C + T * H + H));
  TensorView<float, 2, Backend> dyn(base, {T, E});                           // (T, E) d out_proj input
  TensorView<float, 2, Backend> dy(base + T * E, {T, E});                    // (T, E) d scan output
  float* dzx = base + 2 * T * E;                                             // (T, R) d in_proj output
  float* dxbc = dzx + T * R;                                                 // (B, L, C) d conv output
  TensorView<float, 2, Backend> ddt(dxbc + T * C, {T, H});                   // (T, H) d dt
  TensorView<float, 1, Backend> dA(dxbc + T * C + T * H, {H});               // (H) d A
  const float* zx = s.zxbcdt.data();
  const float* xbc = s.xbc.data();

  {
    ProfileRange<Backend> range(ctx, "out_proj");
    projection_backward(ctx, m.out_proj(), store, s.yn.cview(), dout.template reshape<2>({T, D}), dyn);
  }
  {
    ProfileRange<Backend> range(ctx, "gated_norm");
    const auto& norm = m.norm();
    gated_rms_norm_backward(ctx, s.y.cview(), TensorView<const float, 2, Backend>(zx, {T, E}, {R, 1}), norm.weight(),
                            norm.groups(), norm.eps(), dyn, dy, TensorView<float, 2, Backend>(dzx, {T, E}, {R, 1}),
                            grad_of(store, norm.weight()), put);
  }
  {
    ProfileRange<Backend> range(ctx, "ssd_scan");
    ssd_scan_backward(ctx, TensorView<const float, 4, Backend>(xbc, {B, L, H, P}, {L * C, C, P, 1}),
                      s.dt.cview().template reshape<3>({B, L, H}), s.A.cview(),
                      TensorView<const float, 4, Backend>(xbc + E, {B, L, G, N}, {L * C, C, N, 1}),
                      TensorView<const float, 4, Backend>(xbc + E + G * N, {B, L, G, N}, {L * C, C, N, 1}), m.D(),
                      dy.template reshape<4>({B, L, H, P}),
                      TensorView<float, 4, Backend>(dxbc, {B, L, H, P}, {L * C, C, P, 1}),
                      ddt.template reshape<3>({B, L, H}), dA,
                      TensorView<float, 4, Backend>(dxbc + E, {B, L, G, N}, {L * C, C, N, 1}),
                      TensorView<float, 4, Backend>(dxbc + E + G * N, {B, L, G, N}, {L * C, C, N, 1}),
                      grad_of(store, m.D()), put);
  }
  {
    ProfileRange<Backend> range(ctx, "dt");
    neg_exp_backward(ctx, s.A.cview(), dA, grad_of(store, m.A_log()), acc);
    dt_softplus_backward(ctx, TensorView<const float, 2, Backend>(zx + E + C, {T, H}, {R, 1}), m.dt_bias(),
                         float(cfg.dt_limit_min), float(cfg.dt_limit_max), ddt,
                         TensorView<float, 2, Backend>(dzx + E + C, {T, H}, {R, 1}), grad_of(store, m.dt_bias()),
                         put);
  }
  {
    ProfileRange<Backend> range(ctx, "conv1d");
    const auto& conv = m.conv1d();
    causal_conv1d_backward(ctx, TensorView<const float, 3, Backend>(zx + E, {B, L, C}, {L * R, R, 1}), conv.weight(),
                           conv.bias(), TensorView<const float, 3, Backend>(dxbc, {B, L, C}),
                           TensorView<float, 3, Backend>(dzx + E, {B, L, C}, {L * R, R, 1}),
                           grad_of(store, conv.weight()), grad_of(store, conv.bias()), put);
  }
  ProfileRange<Backend> range(ctx, "in_proj");
  projection_backward(ctx, m.in_proj(), store, u.template reshape<2>({T, D}),
                      TensorView<const float, 2, Backend>(dzx, {T, R}), du.template reshape<2>({T, D}));
}

}  // namespace bimamba
