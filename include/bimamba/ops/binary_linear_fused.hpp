// Two fusions of binary_linear (ops/binary_linear.hpp) for the decode step of a Bi-Mamba block, whose
// residual stream r goes  r += out_proj(mixer(in_proj(rms_norm(r)))):
//
//   binary_linear_rms_normed:  y  = S (alpha ⊙ n) + (beta · n) 1,  n = rms_norm(x, norm_weight, eps)   (T, out)
//   binary_linear_accumulate:  y += S (alpha ⊙ x) + (beta · x) 1                                         (T, out)
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
}  // namespace detail

template <class Backend>
void binary_linear_rms_normed(Context<Backend>& ctx, View<const float, 2, Backend> x,                    // (T, in)
                              View<const float, 1, Backend> norm_weight, float eps,                    // (in)
                              BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,
                              View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,  // (in)
                              View<float, 2, Backend> y) {                                              // (T, out)
  detail::check_binary_linear<Backend>(x, signs.rows(), signs.cols(), alpha, beta, y);
  check_shape(norm_weight, {x.size(1)}, "binary_linear_rms_normed: norm_weight");
  const int64_t T = x.size(0), in = x.size(1);
  if (T == 0 || signs.rows() == 0) return;
  if (detail::try_binary_gemv(ctx, x, signs, alpha, beta, y, norm_weight, eps, false)) return;
  WorkspaceScope<Backend> scope(ctx.workspace());
  TensorView<float, 2, Backend> normed(ctx.workspace().template take<float>(size_t(T * in)), {T, in});
  rms_norm(ctx, x, norm_weight, eps, normed);
  binary_linear(ctx, TensorView<const float, 2, Backend>(normed), signs, alpha, beta, y);
}

template <class Backend>
void binary_linear_accumulate(Context<Backend>& ctx, View<const float, 2, Backend> x,                    // (T, in)
                              BitTensorView<const uint32_t, typename detail::NonDeduced<Backend>::type> signs,
                              View<const float, 1, Backend> alpha, View<const float, 1, Backend> beta,  // (in)
                              View<float, 2, Backend> y) {                                              // (T, out)
  detail::check_binary_linear<Backend>(x, signs.rows(), signs.cols(), alpha, beta, y);
  const int64_t T = x.size(0), out = signs.rows();
  if (T == 0 || out == 0) return;
  if (detail::try_binary_gemv(ctx, x, signs, alpha, beta, y, View<const float, 1, Backend>{}, 0.0f, true)) return;
  WorkspaceScope<Backend> scope(ctx.workspace());
  TensorView<float, 2, Backend> part(ctx.workspace().template take<float>(size_t(T * out)), {T, out});
  binary_linear(ctx, x, signs, alpha, beta, part);
  add(ctx, TensorView<const float, 2, Backend>(part), y);
}

}  // namespace bimamba
