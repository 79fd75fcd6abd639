// Cuda FBI effective weight (see ops/fbi_weight.hpp): W_eff[i, j] = (W[i, j] >= 0 ? alpha[j] : -alpha[j]) + beta[j],
// one thread per element (the same float operations as the host, so the results are bit-identical).
#pragma once

#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void fbi_weight_kernel(TensorView<const T, 2, Cuda> W, TensorView<const T, 1, Cuda> alpha,
                                  TensorView<const T, 1, Cuda> beta, TensorView<T, 2, Cuda> W_eff) {
  const int64_t in = W.size(1), n = W.size(0) * in;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / in, j = k % in;
    W_eff(i, j) = (W(i, j) >= 0.0f ? alpha(j) : -alpha(j)) + beta(j);
  }
}
}  // namespace gpu

inline void fbi_weight_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> W, TensorView<const float, 1, Cuda> alpha,
                            TensorView<const float, 1, Cuda> beta, TensorView<float, 2, Cuda> W_eff) {
  if (W.numel() == 0) return;
  gpu::fbi_weight_kernel<float><<<gpu::grid_for(W.numel()), gpu::kThreads, 0, ctx.stream()>>>(W, alpha, beta, W_eff);
  gpu::check_launch();
}

}  // namespace bimamba::detail
