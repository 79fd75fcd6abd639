// Host Mamba-1 selective scan, prefill and step (see ops/selective_scan.hpp): (batch, channel) pairs in
// parallel; each runs the recurrence over time with its N-vector state in workspace scratch.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../core/context.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../common.hpp"

namespace bimamba::detail {

// One channel over time: s holds the state (N) on entry and on exit.
inline void selective_scan_channel(int64_t L, int64_t N, int64_t b, int64_t e, TensorView<const float, 3, Host> x,
                                   TensorView<const float, 3, Host> dt, TensorView<const float, 2, Host> A,
                                   TensorView<const float, 3, Host> Bm, TensorView<const float, 3, Host> Cm, float d_skip,
                                   TensorView<const float, 3, Host> z, TensorView<float, 3, Host> y, float* s) {
  const bool has_z = present(z);
  for (int64_t t = 0; t < L; ++t) {
    const float d = dt(b, t, e), xv = x(b, t, e), dx = d * xv;
    float acc = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      s[n] = std::exp(d * A(e, n)) * s[n] + dx * Bm(b, t, n);
      acc += s[n] * Cm(b, t, n);
    }
    const float out = acc + d_skip * xv;
    y(b, t, e) = has_z ? out * silu(z(b, t, e)) : out;
  }
}

inline void selective_scan_impl(Context<Host>& ctx, TensorView<const float, 3, Host> x, TensorView<const float, 3, Host> dt,
                                TensorView<const float, 2, Host> A, TensorView<const float, 3, Host> Bm,
                                TensorView<const float, 3, Host> Cm, TensorView<const float, 1, Host> D,
                                TensorView<const float, 3, Host> z, TensorView<float, 3, Host> y,
                                TensorView<const float, 3, Host> initial_state, TensorView<float, 3, Host> final_state) {
  const int64_t B = x.size(0), L = x.size(1), E = x.size(2), N = A.size(1);
  auto& ws = ctx.workspace();
  WorkspaceScope<Host> scope(ws);
  float* states = ws.take<float>(size_t(B * E * N));  // (B, E, N) running states
  ctx.parallel_for(B * E, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / E, e = i % E;
      float* s = states + i * N;
      for (int64_t n = 0; n < N; ++n) s[n] = present(initial_state) ? initial_state(b, e, n) : 0.0f;
      selective_scan_channel(L, N, b, e, x, dt, A, Bm, Cm, present(D) ? D(e) : 0.0f, z, y, s);
      if (present(final_state))
        for (int64_t n = 0; n < N; ++n) final_state(b, e, n) = s[n];
    }
  }, grain(20 * L * N));
}

inline void selective_scan_step_impl(Context<Host>& ctx, TensorView<const float, 2, Host> x, TensorView<const float, 2, Host> dt,
                                     TensorView<const float, 2, Host> A, TensorView<const float, 2, Host> Bm,
                                     TensorView<const float, 2, Host> Cm, TensorView<const float, 1, Host> D,
                                     TensorView<const float, 2, Host> z, TensorView<float, 3, Host> state,
                                     TensorView<float, 2, Host> y) {
  const int64_t B = x.size(0), E = x.size(1), N = A.size(1);
  ctx.parallel_for(B * E, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / E, e = i % E;
      float* s = &state(b, e, 0);
      const float d = dt(b, e), xv = x(b, e), dx = d * xv;
      float acc = 0.0f;
      for (int64_t n = 0; n < N; ++n) {
        s[n] = std::exp(d * A(e, n)) * s[n] + dx * Bm(b, n);
        acc += s[n] * Cm(b, n);
      }
      const float out = acc + (present(D) ? D(e) : 0.0f) * xv;
      y(b, e) = present(z) ? out * silu(z(b, e)) : out;
    }
  }, grain(20 * N));
}

}  // namespace bimamba::detail
