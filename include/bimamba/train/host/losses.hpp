// Host implementations of the training losses (train/losses.hpp states the math and contracts).
//
// Rows r = (b, t) are split into one contiguous chunk per thread; each chunk has its own scratch rows of V
// floats from the workspace (exp(x - max) of the student, and of the teacher for dense distillation).
// Per row (Eigen arrays, vectorised): max, exponentials in float, their sum in double, log-sum-exp; the row's loss goes
// to a double array that is summed in row order afterwards (the result does not depend on the thread count).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../core/context.hpp"
#include "../../core/workspace.hpp"
#include "../../tensor/tensor_view.hpp"
#include "../gradient_mode.hpp"

namespace bimamba::detail {

// Writes zeros to every (b, t) row of a (B, L, V) view contiguous along V.
inline void zero_rows(Context<Host>&, TensorView<float, 3, Host> x) {
  for (int64_t b = 0; b < x.size(0); ++b)
    for (int64_t t = 0; t < x.size(1); ++t) std::memset(&x(b, t, 0), 0, size_t(x.size(2)) * sizeof(float));
}

using ConstRowMap = Eigen::Map<const Eigen::ArrayXf>;
using RowMap = Eigen::Map<Eigen::ArrayXf>;

// e[v] = exp(x[v] - max x); returns log(sum_v e[v]) + max x (the log-sum-exp) and sets z = sum_v e[v].
inline double exp_shifted(const float* x, int64_t V, float* e, double& z) {
  const ConstRowMap xs(x, V);
  const float m = xs.maxCoeff();
  RowMap es(e, V);
  es = (xs - m).exp();
  z = es.cast<double>().sum();
  return double(m) + std::log(z);
}

// sum_v e[v] * (x[v] - lse) in double: minus the row's cross entropy against the weights e.
inline double weighted_log_softmax(const float* e, const float* x, int64_t V, double lse) {
  return (ConstRowMap(e, V).cast<double>() * (ConstRowMap(x, V).cast<double>() - lse)).sum();
}

// g = c * e (Overwrite) or g += c * e (Accumulate).
inline void write_scaled(const float* e, float c, int64_t V, GradientMode mode, float* g) {
  RowMap gs(g, V);
  if (mode == GradientMode::Overwrite) {
    gs = c * ConstRowMap(e, V);
  } else {
    gs += c * ConstRowMap(e, V);
  }
}

// Floats of a scratch row of n: rounded up to whole cache lines, so that every scratch row starts 64-byte
// aligned. Eigen's vectorised reductions peel an unaligned head, so the summation order (the rounding)
// depends on the address: equal alignment keeps results independent of which chunk handles a row.
inline int64_t padded_row(int64_t n) { return (n + 15) / 16 * 16; }

// Runs row_fn(b, t, scratch) for every row of a (B, L) grid on ctx's threads, scratch_per_chunk floats
// of private scratch per chunk (64-byte aligned), storing the returned double per row; returns the sum in
// row order.
template <class RowFn>
double sum_over_rows(Context<Host>& ctx, int64_t B, int64_t L, int64_t scratch_per_chunk, RowFn&& row_fn) {
  const int64_t rows = B * L;
  if (rows == 0) return 0.0;
  WorkspaceScope<Host> scope(ctx.workspace());
  const int64_t chunks = std::min<int64_t>(std::max(1, ctx.threads()), rows);
  double* row_loss = ctx.workspace().take<double>(size_t(rows));
  scratch_per_chunk = padded_row(scratch_per_chunk);
  float* scratch = ctx.workspace().take<float>(size_t(chunks * scratch_per_chunk));
  ctx.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* mine = scratch + c * scratch_per_chunk;
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r) row_loss[r] = row_fn(r / L, r % L, mine);
    }
  });
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return total;
}

inline double cross_entropy_impl(Context<Host>& ctx, TensorView<const float, 3, Host> logits,
                                 TensorView<const int32_t, 2, Host> targets, TensorView<float, 3, Host> dlogits,
                                 float scale, GradientMode mode, int32_t ignore_index) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2);
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      const int32_t y = targets(b, t);
      if (y == ignore_index) continue;
      BIMAMBA_CHECK(y >= 0 && y < V, "cross_entropy_loss: target (", b, ", ", t, ") = ", y, " is outside [0, ", V, ")");
      ++n;
    }
  const bool grad = dlogits.data() != nullptr;
  const double coeff = n ? double(scale) / double(n) : 0.0;
  const double total = sum_over_rows(ctx, B, L, V, [&](int64_t b, int64_t t, float* e) -> double {
    const int32_t y = targets(b, t);
    float* g = grad ? &dlogits(b, t, 0) : nullptr;
    if (y == ignore_index) {
      if (g && mode == GradientMode::Overwrite) std::memset(g, 0, size_t(V) * sizeof(float));
      return 0.0;
    }
    const float* x = &logits(b, t, 0);
    double z = 0;
    const double lse = exp_shifted(x, V, e, z);
    const double loss = lse - double(x[y]);  // before g is written: g may alias x
    if (g) {
      write_scaled(e, float(coeff / z), V, mode, g);
      g[y] -= float(coeff);
    }
    return loss;
  });
  return n ? total / double(n) : 0.0;
}

inline double distill_dense_impl(Context<Host>& ctx, TensorView<const float, 3, Host> logits,
                                 TensorView<const float, 3, Host> teacher, TensorView<float, 3, Host> dlogits,
                                 float scale, GradientMode mode) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2);
  const int64_t n = B * L;
  const bool grad = dlogits.data() != nullptr;
  const double coeff = n ? double(scale) / double(n) : 0.0;
  const double total = sum_over_rows(ctx, B, L, padded_row(V) + V, [&](int64_t b, int64_t t, float* scratch) -> double {
    const float* x = &logits(b, t, 0);
    float* es = scratch;
    float* et = scratch + padded_row(V);
    double zs = 0, zt = 0;
    const double lse = exp_shifted(x, V, es, zs);
    exp_shifted(&teacher(b, t, 0), V, et, zt);
    const double loss = -weighted_log_softmax(et, x, V, lse) / zt;  // before g is written: g may alias x
    if (grad) {
      float* g = &dlogits(b, t, 0);
      write_scaled(es, float(coeff / zs), V, mode, g);
      write_scaled(et, float(-coeff / zt), V, GradientMode::Accumulate, g);
    }
    return loss;
  });
  return n ? total / double(n) : 0.0;
}

inline double distill_topk_impl(Context<Host>& ctx, TensorView<const float, 3, Host> logits,
                                TensorView<const int32_t, 3, Host> ids, TensorView<const float, 3, Host> teacher,
                                TensorView<float, 3, Host> dlogits, float scale, GradientMode mode) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2), K = ids.size(2);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const int32_t id = ids(b, t, k);
        BIMAMBA_CHECK(id >= 0 && id < V, "distill_loss: teacher top-k id (", b, ", ", t, ", ", k, ") = ", id,
                      " is outside [0, ", V, ")");
      }
  const int64_t n = B * L;
  const bool grad = dlogits.data() != nullptr;
  const double coeff = n ? double(scale) / double(n) : 0.0;
  const double total = sum_over_rows(ctx, B, L, padded_row(V) + K, [&](int64_t b, int64_t t, float* scratch) -> double {
    const float* x = &logits(b, t, 0);
    float* es = scratch;
    float* et = scratch + padded_row(V);
    float mt = teacher(b, t, 0);
    for (int64_t k = 1; k < K; ++k) mt = std::max(mt, teacher(b, t, k));
    double zt = 0;
    for (int64_t k = 0; k < K; ++k) {
      et[k] = std::exp(teacher(b, t, k) - mt);
      zt += double(et[k]);
    }
    double zs = 0;
    const double lse = exp_shifted(x, V, es, zs);
    double loss = 0;
    for (int64_t k = 0; k < K; ++k) loss -= double(et[k]) * (double(x[ids(b, t, k)]) - lse);
    if (grad) {
      float* g = &dlogits(b, t, 0);
      write_scaled(es, float(coeff / zs), V, mode, g);
      const float c = float(coeff / zt);
      for (int64_t k = 0; k < K; ++k) g[ids(b, t, k)] -= c * et[k];
    }
    return loss / zt;
  });
  return n ? total / double(n) : 0.0;
}

}  // namespace bimamba::detail
