// Cuda embedding backward (see ops/embedding_backward.hpp): the ids are gathered to the host and checked first
// (InvalidArgument naming the first bad id, as the host), dweight is zeroed under Overwrite, then one thread per
// (position, column) does atomicAdd(&dweight[id, j], dout[b, l, j]). The float atomics make the order of the
// additions into a row that several positions share run-dependent: the result is NOT bit-deterministic (it
// differs from the host's position-order sum by rounding only). The id check synchronizes the stream.
#pragma once

#include <vector>

#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void embedding_scatter_add_kernel(TensorView<const int32_t, 2, Cuda> ids, TensorView<const T, 3, Cuda> dout,
                                             TensorView<T, 2, Cuda> dweight) {
  const int64_t L = ids.size(1), D = dout.size(2), n = ids.size(0) * L * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % D, l = (i / D) % L, b = i / (D * L);
    atomicAdd(&dweight(ids(b, l), j), dout(b, l, j));
  }
}
}  // namespace gpu

inline void embedding_backward_impl(Context<Cuda>& ctx, TensorView<const int32_t, 2, Cuda> ids,
                                    TensorView<const float, 3, Cuda> dout, TensorView<float, 2, Cuda> dweight,
                                    GradientMode mode) {
  const int64_t B = ids.size(0), L = ids.size(1), V = dweight.size(0);
  const std::vector<int32_t> host_ids = gather_to_host(ctx, ids);  // (B, L) row-major
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const int32_t id = host_ids[size_t(b * L + l)];
      BIMAMBA_CHECK(id >= 0 && id < V, "embedding_backward: token id ", id, " at (", b, ", ", l,
                    ") is outside the vocabulary [0, ", V, ")");
    }
  zero_grad(ctx, dweight, mode);
  if (dout.numel() == 0) return;
  gpu::embedding_scatter_add_kernel<float><<<gpu::grid_for(dout.numel()), gpu::kThreads, 0, ctx.stream()>>>(
      ids, dout, dweight);
  gpu::check_launch();
}

}  // namespace bimamba::detail
