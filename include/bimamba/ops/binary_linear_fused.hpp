// Fusions of binary_linear (ops/binary_linear.hpp) for the decode step of a Bi-Mamba block, whose residual
// stream r goes  r += out_proj(gated_rms_norm(mixer(in_proj(rms_norm(r))))):
//
//   binary_linear_rms_normed:             y  = S (alpha ⊙ n) + (beta · n) 1,  n = rms_norm(x, norm_weight, eps)
//   binary_linear_accumulate:             y += S (alpha ⊙ x) + (beta · x) 1
//   binary_linear_rms_normed_accumulate:  y += S (alpha ⊙ n) + (beta · n) 1
//                                         (out_proj of a block with one norm group: the mixer's gated norm
//                                         is an RMSNorm of the gated output, folded into the kernel too)
//
// Equal to the composition (rms_norm, then binary_linear; binary_linear into a temporary, then add) up to
// float rounding. On Cuda, up to kGemvMaxTokens tokens run as one launch of the decode kernel
// (ops/cuda/binary_gemv.cuh): the norm's sum of squares joins the kernel's prologue reductions (norm_weight
// folded into alpha and beta, 1 / rms scaling the output), and accumulate adds in the kernel's epilogue, where
// each output element has one owner. Otherwise, and on Host, they run as the composition (workspace temporaries).
// Shapes as binary_linear; norm_weight (in), any stride; y must not alias x.
#pragma once

#include <cstdint>

#include "../core/workspace.hpp"
#include "add.hpp"
#include "binary_linear.hpp"
#include "rms_norm.hpp"

namespace bimamba {

namespace detail {
// The one-launch forms exist on Cuda only (ops/cuda/binary_gemv.cuh); Host always composes.
template <class... Args>
bool try_binary_gemv(Context<Host>&, Args&&...) {
  return false;
}

// The shared body: y (+)= binary_linear(x, or rms_norm(x) when norm_weight is present); one decode-kernel
// launch where it applies, the composition otherwise.
template <class Backend>
void binary_linear_normed_into(Context<Backend>& ctx, View<const float, 2, Backend> x,
                               View<const float, 1, Backend> norm_weight, float eps,
                               BitTensorView<const uint32_t, Backend> signs, View<const float, 1, Backend> alpha,
                               View<const float, 1, Backend> beta, View<float, 2, Backend> y, bool accumulate,
                               const char* norm_weight_name) {
  check_binary_linear<Backend>(x, signs.rows(), signs.cols(), alpha, beta, y);
  if (present(norm_weight)) check_shape(norm_weight, {x.size(1)}, norm_weight_name);
  const int64_t T = x.size(0), in = x.size(1), out = signs.rows();
  if (T == 0 || out == 0) return;
  if (try_binary_gemv(ctx, x, signs, alpha, beta, y, norm_weight, eps, accumulate)) return;
  WorkspaceScope<Backend> scope(ctx.workspace());
  auto& ws = ctx.workspace();
  TensorView<const float, 2, Backend> input = x;
  if (present(norm_weight)) {
    TensorView<float, 2, Backend> normed(ws.template take<float>(size_t(T * in)), {T, in});
    rms_norm(ctx, x, norm_weight, eps, normed);
    input = normed;
  }
  if (!accumulate) {
    binary_linear(ctx, input, signs, alpha, beta, y);
    return;
  }
  TensorView<float, 2, Backend> part(ws.template take<float>(size_t(T * out)), {T, out});
  binary_linear(ctx, input, signs, alpha, beta, part);
  add(ctx, TensorView<const float, 2, Backend>(part), y);
}
}  // namespace detail

template <class Backend>
void binary_linear_rms_normed(Context<Backend>& ctx, View<const float, 2, Backend> x,                    // (T, in)
                              View<const float, 1, Backend> norm_weight, float eps,                    // (in)
                              BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,
                              View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,  // (in)
                              View<float, 2, Backend> y) {                                              // (T, out)
  BIMAMBA_CHECK(present(norm_weight), "binary_linear_rms_normed: the norm weight is empty");
  detail::binary_linear_normed_into<Backend>(ctx, x, norm_weight, eps, signs, alpha, beta, y, false,
                                             "binary_linear_rms_normed: norm_weight");
}

template <class Backend>
void binary_linear_accumulate(Context<Backend>& ctx, View<const float, 2, Backend> x,                    // (T, in)
                              BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,
                              View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,  // (in)
                              View<float, 2, Backend> y) {                                              // (T, out)
  detail::binary_linear_normed_into<Backend>(ctx, x, {}, 0.0f, signs, alpha, beta, y, true, "");
}

template <class Backend>
void binary_linear_rms_normed_accumulate(Context<Backend>& ctx, View<const float, 2, Backend> x,  // (T, in)
                                         View<const float, 1, Backend> norm_weight, float eps,  // (in)
                                         BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,
                                         View<const float, 1, Backend> alpha,  // (in)
                                         View<const float, 1, Backend> beta,   // (in)
                                         View<float, 2, Backend> y) {          // (T, out)
  BIMAMBA_CHECK(present(norm_weight), "binary_linear_rms_normed_accumulate: the norm weight is empty");
  detail::binary_linear_normed_into<Backend>(ctx, x, norm_weight, eps, signs, alpha, beta, y, true,
                                             "binary_linear_rms_normed_accumulate: norm_weight");
}

}  // namespace bimamba
