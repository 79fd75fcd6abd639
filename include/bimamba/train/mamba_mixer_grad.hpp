// Training forward and backward of one Mamba-1 mixer (nn/mamba_mixer.hpp), from a zero state and without
// padding masks (a training window is a fresh sequence).
//
//   forward (the mixer's math, keeping what backward needs in MambaSaved):
//     xz = in_proj(u)  (T, 2E)               xc = silu(conv1d(x))  (B, L, E)
//     xdbl = x_proj(xc)  (T, R + 2N)         rows [dt_low (R) | B (N) | C (N)]
//     dtl = dt_low dt_proj.W^T  (T, E)       dt = softplus(dtl + dt_proj.bias)   A = -exp(A_log)  (E, N)
//     y = (scan(xc, dt, A, B, C) + D xc) silu(z)  (T, E)                         out = out_proj(y)
//   backward, in reverse: out_proj -> scan (dxc, ddt, dA, dB, dC, dD, dz) -> A_log -> softplus (ddtl,
//     ddt_proj.bias) -> dt_proj (d dt_low, ddt_proj.W) -> x_proj (dxc += , dx_proj.W) -> conv1d -> in_proj.
// Parameter gradients Accumulate into the ParamStore's grads; du is Overwritten. Saved per mixer: xz (2 T E),
// xc, dtl, dt, y (4 T E), xdbl (T (R + 2N)) and A (E N) floats; the scan states are recomputed by the
// backward. Backward scratch (one mixer at a time) comes from ctx.workspace().
#pragma once

#include <cstdint>
#include <limits>

#include "../model/config.hpp"
#include "../nn/mamba_mixer.hpp"
#include "../ops/selective_scan_backward.hpp"
#include "mamba2_mixer_grad.hpp"

namespace bimamba {

template <class Backend>
struct MambaSaved {
  Tensor<float, 2, Backend> xz;    // (T, 2E) in_proj output: [x (before the conv) | z]
  Tensor<float, 3, Backend> xc;    // (B, L, E) after conv + SiLU
  Tensor<float, 2, Backend> xdbl;  // (T, R + 2N) x_proj output
  Tensor<float, 2, Backend> dtl;   // (T, E) dt_proj output before the bias and softplus
  Tensor<float, 2, Backend> dt;    // (T, E) after softplus
  Tensor<float, 2, Backend> A;     // (E, N)
  Tensor<float, 2, Backend> y;     // (T, E) gated scan output (out_proj's input)
};

// u (B, L, D) -> out (B, L, D), filling saved.
template <class Backend>
void mamba_forward_train(Context<Backend>& ctx, const MambaMixer<Backend>& m, const ModelConfig& cfg,
                         View<const float, 3, Backend> u, View<float, 3, Backend> out, MambaSaved<Backend>& s) {
  const int64_t B = u.size(0), L = u.size(1), T = B * L, D = cfg.d_model, E = cfg.d_inner(), N = cfg.d_state,
                R = cfg.dt_rank, X = R + 2 * N;
  const float inf = std::numeric_limits<float>::infinity();
  s.xz = Tensor<float, 2, Backend>({T, 2 * E});
  s.xc = Tensor<float, 3, Backend>({B, L, E});
  s.xdbl = Tensor<float, 2, Backend>({T, X});
  s.dtl = Tensor<float, 2, Backend>({T, E});
  s.dt = Tensor<float, 2, Backend>({T, E});
  s.A = Tensor<float, 2, Backend>({E, N});
  s.y = Tensor<float, 2, Backend>({T, E});
  const float* xz = s.xz.data();
  const float* xdbl = s.xdbl.data();
  m.in_proj().forward(ctx, u.template reshape<2>({T, D}), s.xz.view());
  m.conv1d().forward(ctx, TensorView<const float, 3, Backend>(xz, {B, L, E}, {L * 2 * E, 2 * E, 1}), s.xc.view());
  const auto xc2 = s.xc.cview().template reshape<2>({T, E});
  m.x_proj().forward(ctx, xc2, s.xdbl.view());
  linear(ctx, TensorView<const float, 2, Backend>(xdbl, {T, R}, {X, 1}), m.dt_proj().weight(), {}, s.dtl.view());
  dt_softplus(ctx, s.dtl.cview(), m.dt_proj().bias(), 0.0f, inf, s.dt.view());
  neg_exp(ctx, m.A_log().template reshape<1>({E * N}), s.A.view().template reshape<1>({E * N}));
  selective_scan(ctx, s.xc.cview(), s.dt.cview().template reshape<3>({B, L, E}), s.A.cview(),
                 TensorView<const float, 3, Backend>(xdbl + R, {B, L, N}, {L * X, X, 1}),
                 TensorView<const float, 3, Backend>(xdbl + R + N, {B, L, N}, {L * X, X, 1}), m.D(),
                 TensorView<const float, 3, Backend>(xz + E, {B, L, E}, {L * 2 * E, 2 * E, 1}),
                 s.y.view().template reshape<3>({B, L, E}));
  m.out_proj().forward(ctx, s.y.cview(), out.template reshape<2>({T, D}));
}

// dout (B, L, D) -> du (B, L, D) (Overwritten); parameter gradients Accumulate into store. The activation
// gradients live in zeroed workspace memory, so every op below runs once with GradientMode::Accumulate.
template <class Backend>
void mamba_backward(Context<Backend>& ctx, const MambaMixer<Backend>& m, const ModelConfig& cfg,
                    ParamStore<Backend>& store, View<const float, 3, Backend> u, const MambaSaved<Backend>& s,
                    View<const float, 3, Backend> dout, View<float, 3, Backend> du) {
  const int64_t B = u.size(0), L = u.size(1), T = B * L, D = cfg.d_model, E = cfg.d_inner(), N = cfg.d_state,
                R = cfg.dt_rank, X = R + 2 * N;
  const float inf = std::numeric_limits<float>::infinity();
  const auto acc = GradientMode::Accumulate;
  auto& ws = ctx.workspace();
  WorkspaceScope<Backend> scope(ws);
  const size_t scratch = size_t(6 * T * E + T * X + E * N);
  float* base = ws.template take<float>(scratch);
  MemoryOps<Backend>::fill_zero(base, scratch * sizeof(float));
  TensorView<float, 2, Backend> dy(base, {T, E});                 // (T, E) d out_proj input
  float* dxz = base + T * E;                                      // (T, 2E) d in_proj output
  TensorView<float, 3, Backend> dxc(base + 3 * T * E, {B, L, E});  // (B, L, E) d conv output
  TensorView<float, 2, Backend> ddt(base + 4 * T * E, {T, E});     // (T, E) d dt
  TensorView<float, 2, Backend> ddtl(base + 5 * T * E, {T, E});    // (T, E) d dt_proj output
  float* dxdbl = base + 6 * T * E;                                 // (T, X) d x_proj output
  TensorView<float, 2, Backend> dA(dxdbl + T * X, {E, N});         // (E, N) d A
  const float* xz = s.xz.data();
  const float* xdbl = s.xdbl.data();

  projection_backward(ctx, m.out_proj(), store, s.y.cview(), dout.template reshape<2>({T, D}), dy);
  selective_scan_backward(ctx, s.xc.cview(), s.dt.cview().template reshape<3>({B, L, E}), s.A.cview(),
                          TensorView<const float, 3, Backend>(xdbl + R, {B, L, N}, {L * X, X, 1}),
                          TensorView<const float, 3, Backend>(xdbl + R + N, {B, L, N}, {L * X, X, 1}), m.D(),
                          TensorView<const float, 3, Backend>(xz + E, {B, L, E}, {L * 2 * E, 2 * E, 1}),
                          dy.template reshape<3>({B, L, E}), dxc, ddt.template reshape<3>({B, L, E}), dA,
                          TensorView<float, 3, Backend>(dxdbl + R, {B, L, N}, {L * X, X, 1}),
                          TensorView<float, 3, Backend>(dxdbl + R + N, {B, L, N}, {L * X, X, 1}),
                          grad_of(store, m.D()), TensorView<float, 3, Backend>(dxz + E, {B, L, E}, {L * 2 * E, 2 * E, 1}),
                          acc);
  neg_exp_backward(ctx, s.A.cview().template reshape<1>({E * N}), dA.template reshape<1>({E * N}),
                   grad_of(store, m.A_log()).template reshape<1>({E * N}), acc);
  const auto& dtp = m.dt_proj();
  dt_softplus_backward(ctx, s.dtl.cview(), dtp.bias(), 0.0f, inf, ddt, ddtl, grad_of(store, dtp.bias()), acc);
  linear_backward(ctx, TensorView<const float, 2, Backend>(xdbl, {T, R}, {X, 1}), dtp.weight(), ddtl,
                  TensorView<float, 2, Backend>(dxdbl, {T, R}, {X, 1}), grad_of(store, dtp.weight()), {}, acc);
  const auto& xp = m.x_proj();
  linear_backward(ctx, s.xc.cview().template reshape<2>({T, E}), xp.weight(), TensorView<const float, 2, Backend>(dxdbl, {T, X}),
                  dxc.template reshape<2>({T, E}), grad_of(store, xp.weight()), grad_of(store, xp.bias()), acc);
  const auto& conv = m.conv1d();
  causal_conv1d_backward(ctx, TensorView<const float, 3, Backend>(xz, {B, L, E}, {L * 2 * E, 2 * E, 1}), conv.weight(),
                         conv.bias(), dxc, TensorView<float, 3, Backend>(dxz, {B, L, E}, {L * 2 * E, 2 * E, 1}),
                         grad_of(store, conv.weight()), grad_of(store, conv.bias()), acc);
  projection_backward(ctx, m.in_proj(), store, u.template reshape<2>({T, D}),
                      TensorView<const float, 2, Backend>(dxz, {T, 2 * E}), du.template reshape<2>({T, D}));
}

}  // namespace bimamba
