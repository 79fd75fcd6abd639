// Cuda embedding gather (see ops/embedding.hpp): one block per token copies its row. Ids outside [0, V) are
// clamped for the copy (no out-of-bounds read) and the smallest bad position is recorded in a device flag;
// the launcher reads the flag back and throws InvalidArgument naming the id, its position and V. While the
// stream is being captured into a CUDA graph no read-back is possible, so the check is skipped there (the
// copy stays in bounds); callers validate ids before replaying a graph.
#pragma once

#include <cstdint>

#include "../../core/workspace.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
__global__ void embedding_kernel(TensorView<const int32_t, 2, Cuda> ids, TensorView<const T, 2, Cuda> weight,
                                 TensorView<T, 3, Cuda> out, unsigned long long* bad_position) {
  const int64_t L = ids.size(1), V = weight.size(0), D = weight.size(1);
  const int64_t b = blockIdx.x / L, l = blockIdx.x % L;
  int64_t id = ids(b, l);
  if (id < 0 || id >= V) {
    if (threadIdx.x == 0) atomicMin(bad_position, static_cast<unsigned long long>(blockIdx.x));
    id = id < 0 ? 0 : V - 1;
  }
  const T* src = &weight(id, 0);
  T* dst = &out(b, l, 0);
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) dst[j] = src[j];
}
}  // namespace gpu

inline void embedding_impl(Context<Cuda>& ctx, TensorView<const int32_t, 2, Cuda> ids, TensorView<const float, 2, Cuda> weight,
                           TensorView<float, 3, Cuda> out) {
  const int64_t B = ids.size(0), L = ids.size(1), V = weight.size(0);
  if (B * L == 0) return;
  BIMAMBA_CHECK(B * L < (int64_t(1) << 31), "embedding: ", B * L, " tokens exceed the Cuda grid limit");
  BIMAMBA_CHECK(V > 0, "embedding: empty vocabulary");
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  BIMAMBA_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream(), &capture));
  WorkspaceScope<Cuda> scope(ctx.workspace());
  auto* flag = ctx.workspace().take<unsigned long long>(1);
  BIMAMBA_CUDA_CHECK(cudaMemsetAsync(flag, 0xff, sizeof(*flag), ctx.stream()));
  gpu::embedding_kernel<float><<<unsigned(B * L), 128, 0, ctx.stream()>>>(ids, weight, out, flag);
  gpu::check_launch();
  if (capture != cudaStreamCaptureStatusNone) return;
  unsigned long long bad = 0;
  BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(&bad, flag, sizeof(bad), cudaMemcpyDeviceToHost, ctx.stream()));
  BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  if (bad == ~0ull) return;
  const int64_t b = int64_t(bad) / L, l = int64_t(bad) % L;
  int32_t id = 0;
  BIMAMBA_CUDA_CHECK(cudaMemcpy(&id, &ids(b, l), sizeof(id), cudaMemcpyDeviceToHost));
  BIMAMBA_THROW(InvalidArgument, "embedding: token id ", id, " at (", b, ", ", l, ") is outside the vocabulary [0, ", V, ")");
}

}  // namespace bimamba::detail
