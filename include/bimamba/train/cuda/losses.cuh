// Cuda training losses (train/losses.hpp states the math and contracts; the host version is
// train/host/losses.hpp). One block per row r = (b, t):
//   max (float), exponentials expf(x - max) in float, their sum in double (tree sum), lse = max + log(sum),
//   the row's loss in double into a per-row buffer; then the gradient in the host's float operations:
//   g = float(coeff / z) e  (or g += ...), then g[y] -= float(coeff) (CE), g += float(-coeff / z_t) e_t (dense
//   distillation), g[id_k] -= float(coeff / z_t) e_t[k] by one thread in k order (top-k: ids may repeat).
// Every read of the row's logits happens before the block's first barrier-separated write, so dlogits may
// alias logits. The per-row losses are copied back and added in row order on the host (deterministic; the
// call synchronizes the stream). Targets and top-k ids are gathered to the host and checked first, with the
// host's InvalidArgument messages. Rows of logits must be contiguous along V (checked by losses.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/workspace.hpp"
#include "../gradient_mode.hpp"
#include "reduce.cuh"

namespace bimamba::detail {

namespace gpu {
enum class LossKind { CrossEntropy, DistillDense, DistillTopK };

struct LossArgs {
  TensorView<const float, 3, Cuda> logits;   // (B, L, V)
  TensorView<const int32_t, 2, Cuda> targets;  // CE: (B, L)
  TensorView<const float, 3, Cuda> teacher;  // dense: (B, L, V); top-k: (B, L, K) logits
  TensorView<const int32_t, 3, Cuda> ids;    // top-k: (B, L, K)
  TensorView<float, 3, Cuda> dlogits;        // (B, L, V) or empty
  double coeff = 0;                          // scale / n
  GradientMode mode = GradientMode::Overwrite;
  int32_t ignore_index = -100;
};

template <LossKind kind>
__global__ void loss_rows_kernel(LossArgs a, double* row_loss) {
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  const int64_t L = a.logits.size(1), V = a.logits.size(2);
  const int64_t r = blockIdx.x, b = r / L, t = r % L;
  const float* x = &a.logits(b, t, 0);
  float* g = present(a.dlogits) ? &a.dlogits(b, t, 0) : nullptr;
  const bool overwrite = a.mode == GradientMode::Overwrite;

  int32_t y = 0;
  if constexpr (kind == LossKind::CrossEntropy) {
    y = a.targets(b, t);
    if (y == a.ignore_index) {
      if (g && overwrite)
        for (int64_t v = threadIdx.x; v < V; v += blockDim.x) g[v] = 0.0f;
      if (threadIdx.x == 0) row_loss[r] = 0.0;
      return;
    }
  }
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, x[v]);
  m = block_max(m, fscratch);
  double zs = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) zs += double(expf(x[v] - m));
  zs = block_sum(zs, dscratch);
  const double lse = double(m) + log(zs);

  double loss = 0, zt = 0;
  float mt = -INFINITY;
  if constexpr (kind == LossKind::CrossEntropy) {
    loss = lse - double(x[y]);
  } else if constexpr (kind == LossKind::DistillDense) {
    const float* te = &a.teacher(b, t, 0);
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mt = fmaxf(mt, te[v]);
    mt = block_max(mt, fscratch);
    double wsum = 0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      const float e = expf(te[v] - mt);
      zt += double(e);
      wsum += double(e) * (double(x[v]) - lse);
    }
    zt = block_sum(zt, dscratch);
    wsum = block_sum(wsum, dscratch);
    loss = -wsum / zt;
  } else {
    const int64_t K = a.ids.size(2);
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) mt = fmaxf(mt, a.teacher(b, t, k));
    mt = block_max(mt, fscratch);
    double wsum = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const float e = expf(a.teacher(b, t, k) - mt);
      zt += double(e);
      wsum += double(e) * (double(x[a.ids(b, t, k)]) - lse);
    }
    zt = block_sum(zt, dscratch);
    wsum = block_sum(wsum, dscratch);
    loss = -wsum / zt;
  }
  if (threadIdx.x == 0) row_loss[r] = loss;
  if (!g) return;
  __syncthreads();  // every thread has read the row (and x[y]) before any gradient write

  const float cs = float(a.coeff / zs);
  const float ct = kind == LossKind::DistillDense ? float(-a.coeff / zt) : 0.0f;
  const float te_max = mt;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float e = expf(x[v] - m);
    float out = overwrite ? cs * e : g[v] + cs * e;
    if constexpr (kind == LossKind::CrossEntropy) {
      if (v == y) out -= float(a.coeff);
    } else if constexpr (kind == LossKind::DistillDense) {
      out += ct * expf(a.teacher(b, t, v) - te_max);
    }
    g[v] = out;
  }
  if constexpr (kind == LossKind::DistillTopK) {
    __syncthreads();
    if (threadIdx.x == 0) {
      const float c = float(a.coeff / zt);
      for (int64_t k = 0; k < a.ids.size(2); ++k) g[a.ids(b, t, k)] -= c * expf(a.teacher(b, t, k) - te_max);
    }
  }
}

template <class T>
__global__ void zero_rows_kernel(TensorView<T, 3, Cuda> x) {
  const int64_t L = x.size(1), V = x.size(2), n = x.size(0) * L * V;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x(i / (L * V), (i / V) % L, i % V) = T(0);
}
}  // namespace gpu

inline void zero_rows(Context<Cuda>& ctx, TensorView<float, 3, Cuda> x) {
  if (x.numel() == 0) return;
  gpu::zero_rows_kernel<float><<<gpu::grid_for(x.numel()), gpu::kThreads, 0, ctx.stream()>>>(x);
  gpu::check_launch();
}

// Runs the row kernel over the (B, L) rows; returns the sum of the row losses in row order.
template <gpu::LossKind kind>
double sum_loss_rows(Context<Cuda>& ctx, const gpu::LossArgs& args) {
  const int64_t rows = args.logits.size(0) * args.logits.size(1);
  if (rows == 0) return 0.0;
  BIMAMBA_CHECK(rows < (int64_t(1) << 31), "losses (Cuda): more than 2^31 rows");
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* row_loss = ctx.workspace().take<double>(size_t(rows));
  gpu::loss_rows_kernel<kind><<<unsigned(rows), gpu::kThreads, 0, ctx.stream()>>>(args, row_loss);
  gpu::check_launch();
  const std::vector<double> host = copy_back(ctx, row_loss, size_t(rows));
  double total = 0;
  for (double v : host) total += v;
  return total;
}

inline double cross_entropy_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> logits,
                                 TensorView<const int32_t, 2, Cuda> targets, TensorView<float, 3, Cuda> dlogits,
                                 float scale, GradientMode mode, int32_t ignore_index) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2);
  const std::vector<int32_t> y = gather_to_host(ctx, targets);  // (B, L); targets may be a column range
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) {
      const int32_t id = y[size_t(b * L + t)];
      if (id == ignore_index) continue;
      BIMAMBA_CHECK(id >= 0 && id < V, "cross_entropy_loss: target (", b, ", ", t, ") = ", id, " is outside [0, ", V, ")");
      ++n;
    }
  gpu::LossArgs args;
  args.logits = logits;
  args.targets = targets;
  args.dlogits = dlogits;
  args.coeff = n ? double(scale) / double(n) : 0.0;
  args.mode = mode;
  args.ignore_index = ignore_index;
  const double total = sum_loss_rows<gpu::LossKind::CrossEntropy>(ctx, args);
  return n ? total / double(n) : 0.0;
}

inline double distill_dense_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> logits,
                                 TensorView<const float, 3, Cuda> teacher, TensorView<float, 3, Cuda> dlogits,
                                 float scale, GradientMode mode) {
  const int64_t n = logits.size(0) * logits.size(1);
  gpu::LossArgs args;
  args.logits = logits;
  args.teacher = teacher;
  args.dlogits = dlogits;
  args.coeff = n ? double(scale) / double(n) : 0.0;
  args.mode = mode;
  const double total = sum_loss_rows<gpu::LossKind::DistillDense>(ctx, args);
  return n ? total / double(n) : 0.0;
}

inline double distill_topk_impl(Context<Cuda>& ctx, TensorView<const float, 3, Cuda> logits,
                                TensorView<const int32_t, 3, Cuda> ids, TensorView<const float, 3, Cuda> teacher,
                                TensorView<float, 3, Cuda> dlogits, float scale, GradientMode mode) {
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2), K = ids.size(2);
  const std::vector<int32_t> host_ids = gather_to_host(ctx, ids);  // (B, L, K)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const int32_t id = host_ids[size_t((b * L + t) * K + k)];
        BIMAMBA_CHECK(id >= 0 && id < V, "distill_loss: teacher top-k id (", b, ", ", t, ", ", k, ") = ", id,
                      " is outside [0, ", V, ")");
      }
  const int64_t n = B * L;
  gpu::LossArgs args;
  args.logits = logits;
  args.teacher = teacher;
  args.ids = ids;
  args.dlogits = dlogits;
  args.coeff = n ? double(scale) / double(n) : 0.0;
  args.mode = mode;
  const double total = sum_loss_rows<gpu::LossKind::DistillTopK>(ctx, args);
  return n ? total / double(n) : 0.0;
}

}  // namespace bimamba::detail
