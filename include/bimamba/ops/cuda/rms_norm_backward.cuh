// Cuda RMSNorm backward (see ops/rms_norm_backward.hpp): the gated norm backward's kernel without the gate
// (norm_backward_rows<false>, ops/cuda/gated_rms_norm_backward.cuh), one group of D columns: blocks walk the rows,
// each row summed in double (sum x^2 and sum_k w_k dy_k x_k, r = 1/sqrt(mean + eps)), dx = r w dy - (r^3 / D) x dot
// in float, the dw terms dy x r summed in double per block and then over the blocks by column_reduce.
// Why (session 21): one block per row and a second pass over x and dy for dw (column_reduce over T rows) read the
// (T, D) inputs twice; here they are read once.
#pragma once

#include "gated_rms_norm_backward.cuh"

namespace bimamba::detail {

inline void rms_norm_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                   TensorView<const float, 1, Cuda> w, float eps, TensorView<const float, 2, Cuda> dy,
                                   TensorView<float, 2, Cuda> dx, TensorView<float, 1, Cuda> dw, GradientMode mode) {
  norm_backward_rows<false>(ctx, "rms_norm_backward", x, {}, w, 1, eps, dy, dx, {}, dw, mode);
}

}  // namespace bimamba::detail
