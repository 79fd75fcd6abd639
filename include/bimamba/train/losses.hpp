// Training losses on logits, each returning the loss and (optionally) writing its gradient dlogits.
//
// Shapes: logits, dlogits (B, L, V) float, last dimension contiguous; targets / tokens (B, L) int32;
// dense teacher logits (B, L, V); top-k teacher ids / logits (B, L, K). Row r = (b, t).
//
//   cross_entropy_loss:  position t predicts targets(b, t) (already shifted, e.g. a Batch's targets()):
//       L = (1/n) sum_{r: target_r != ignore} (logsumexp(x_r) - x_r[target_r]),  n = rows counted
//       dL/dx_r = (softmax(x_r) - onehot(target_r)) / n   (0 on ignored rows)
//   next_token_loss:     the same with targets = tokens shifted by one: positions 0..L-2 predict tokens
//       1..L-1 (HF's "labels = input_ids"); the last position gets no loss and a zero gradient.
//   distill_loss:        autoregressive distillation at temperature 1 over all n = B*L positions:
//       L = -(1/n) sum_r sum_v p_r[v] log_softmax(x_r)[v],  p_r = softmax(teacher_r)
//       dL/dx_r = (softmax(x_r) - p_r) / n
//     With a TopKTeacher the teacher distribution is the softmax of its K logits placed at its K ids
//     (renormalised over the top k, zero elsewhere).
//   mixed_loss:          w_ce * cross_entropy + w_distill * distill (both parts reported).
//
// Gradient: dlogits = scale * dL/dx (GradientMode::Overwrite) or dlogits += scale * dL/dx (Accumulate);
// pass an empty view to compute the loss only. dlogits may be logits itself (in place, saving a (B, L, V)
// buffer), except in mixed_loss (its second part reads the logits again); never a dense teacher's logits. Numerics:
// max-subtracted log-sum-exp, exponentials in float, sums in double; the loss is summed per row and then over rows in a
// fixed order, so it does not depend on the thread count. A non-finite logit gives a non-finite loss (no exception: the
// optimizer's non-finite policy, train/grad_utils.hpp, decides what happens). Out-of-range ids throw InvalidArgument.
#pragma once

#include <cstdint>

#include "../core/context.hpp"
#include "../tensor/tensor_view.hpp"
#include "gradient_mode.hpp"
#include "host/losses.hpp"
#if defined(__CUDACC__) && __has_include("cuda/losses.cuh")
#include "cuda/losses.cuh"
#endif
#include "nondeduced.hpp"

namespace bimamba {

struct LossOptions {
  float scale = 1.0f;  // dlogits = scale * dL/dlogits
  GradientMode mode = GradientMode::Overwrite;
  int32_t ignore_index = -100;  // cross entropy: targets equal to this are skipped
};

// The teacher as its k most likely tokens per position.
template <class Backend>
struct TopKTeacher {
  TensorView<const int32_t, 3, Backend> ids;   // (B, L, K) token ids in [0, V)
  TensorView<const float, 3, Backend> logits;  // (B, L, K) the teacher's logits at those ids
};

struct LossWeights {
  double ce = 0.0;
  double distill = 1.0;
};

struct MixedLoss {
  double total = 0;  // ce_weight * ce + distill_weight * distill
  double ce = 0;
  double distill = 0;
};

namespace detail {

template <class Backend>
void check_logit_views(const char* fn, TensorView<const float, 3, Backend> logits,
                       TensorView<float, 3, Backend> dlogits) {
  BIMAMBA_CHECK(logits.size(2) == 0 || logits.stride(2) == 1, fn, ": logits must be contiguous along V (stride ",
                logits.stride(2), ")");
  if (dlogits.data() == nullptr) return;
  check_shape<float, 3>(dlogits, logits.shape(), "dlogits");
  BIMAMBA_CHECK(dlogits.stride(2) == 1, fn, ": dlogits must be contiguous along V (stride ", dlogits.stride(2), ")");
}

}  // namespace detail

template <class Backend>
double cross_entropy_loss(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
                          TensorView<const int32_t, 2, Nondeduced<Backend>> targets,
                          TensorView<float, 3, Nondeduced<Backend>> dlogits, const LossOptions& options = {}) {
  detail::check_logit_views("cross_entropy_loss", logits, dlogits);
  check_shape(targets, {logits.size(0), logits.size(1)}, "cross_entropy_loss: targets");
  return detail::cross_entropy_impl(ctx, logits, targets, dlogits, options.scale, options.mode, options.ignore_index);
}

template <class Backend>
double next_token_loss(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
                       TensorView<const int32_t, 2, Nondeduced<Backend>> tokens,
                       TensorView<float, 3, Nondeduced<Backend>> dlogits, const LossOptions& options = {}) {
  detail::check_logit_views("next_token_loss", logits, dlogits);
  check_shape(tokens, {logits.size(0), logits.size(1)}, "next_token_loss: tokens");
  const int64_t L = logits.size(1);
  BIMAMBA_CHECK(L >= 2, "next_token_loss: needs at least 2 positions, got L = ", L);
  TensorView<float, 3, Backend> head = dlogits.data() ? dlogits.narrow(1, 0, L - 1) : dlogits;
  const double loss = detail::cross_entropy_impl(ctx, logits.narrow(1, 0, L - 1), tokens.narrow(1, 1, L - 1), head,
                                                 options.scale, options.mode, options.ignore_index);
  if (dlogits.data() && options.mode == GradientMode::Overwrite) detail::zero_rows(ctx, dlogits.narrow(1, L - 1, 1));
  return loss;
}

template <class Backend>
double distill_loss(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
                    TensorView<const float, 3, Nondeduced<Backend>> teacher_logits,
                    TensorView<float, 3, Nondeduced<Backend>> dlogits, const LossOptions& options = {}) {
  detail::check_logit_views("distill_loss", logits, dlogits);
  check_shape<const float, 3>(teacher_logits, logits.shape(), "distill_loss: teacher_logits");
  BIMAMBA_CHECK(teacher_logits.stride(2) == 1, "distill_loss: teacher_logits must be contiguous along V");
  return detail::distill_dense_impl(ctx, logits, teacher_logits, dlogits, options.scale, options.mode);
}

template <class Backend>
double distill_loss(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
                    const TopKTeacher<Nondeduced<Backend>>& teacher, TensorView<float, 3, Nondeduced<Backend>> dlogits,
                    const LossOptions& options = {}) {
  detail::check_logit_views("distill_loss", logits, dlogits);
  const int64_t K = teacher.ids.size(2);
  check_shape(teacher.ids, {logits.size(0), logits.size(1), K}, "distill_loss: teacher ids");
  check_shape<const float, 3>(teacher.logits, teacher.ids.shape(), "distill_loss: teacher top-k logits");
  BIMAMBA_CHECK(K >= 1, "distill_loss: the top-k teacher has K = 0");
  return detail::distill_topk_impl(ctx, logits, teacher.ids, teacher.logits, dlogits, options.scale, options.mode);
}

// weights.ce * cross_entropy_loss(targets) + weights.distill * distill_loss(teacher); Teacher is a dense
// (B, L, V) view or a TopKTeacher. A zero weight skips that part (reported as 0).
template <class Backend, class Teacher>
MixedLoss mixed_loss(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> logits,
                     TensorView<const int32_t, 2, Nondeduced<Backend>> targets, const Teacher& teacher,
                     TensorView<float, 3, Nondeduced<Backend>> dlogits, const LossWeights& weights,
                     const LossOptions& options = {}) {
  MixedLoss out;
  LossOptions part = options;
  bool wrote = false;
  if (weights.ce != 0) {
    part.scale = float(double(options.scale) * weights.ce);
    out.ce = cross_entropy_loss(ctx, logits, targets, dlogits, part);
    wrote = true;
  }
  if (weights.distill != 0) {
    part.scale = float(double(options.scale) * weights.distill);
    part.mode = wrote ? GradientMode::Accumulate : options.mode;
    out.distill = distill_loss(ctx, logits, teacher, dlogits, part);
    wrote = true;
  }
  if (!wrote && dlogits.data() && options.mode == GradientMode::Overwrite) detail::zero_rows(ctx, dlogits);
  out.total = weights.ce * out.ce + weights.distill * out.distill;
  return out;
}

}  // namespace bimamba
