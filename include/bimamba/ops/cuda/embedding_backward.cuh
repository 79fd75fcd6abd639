// Cuda embedding backward (see ops/embedding_backward.hpp): the ids are gathered to the host and checked first
// (InvalidArgument naming the first bad id, as the host), dweight is zeroed under Overwrite. The host then groups
// the positions by id (a stable sort: positions of one id stay in increasing order) and uploads that order; one
// thread per (id present, column) adds the id's rows of dout to its row of dweight in that order. Every element
// therefore gets its terms in the host's order: the same bits as the host, on every run (an atomicAdd per
// (position, column), the earlier form, made GPU training runs differ from each other at rounding level). The id
// check synchronizes the stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "launch_backward.cuh"

namespace bimamba::detail {

namespace gpu {
// Block (x: segment s = one id, y: a range of columns): dweight[id_s, j] += dout[p, j] for the positions p of
// segment s in increasing order (positions flattened as b * L + l).
template <class T>
__global__ void embedding_segment_add_kernel(const int32_t* order, const int32_t* segment_start,
                                             const int32_t* segment_id, TensorView<const T, 3, Cuda> dout,
                                             TensorView<T, 2, Cuda> dweight) {
  const int64_t s = blockIdx.x, j = int64_t(blockIdx.y) * blockDim.x + threadIdx.x, L = dout.size(1);
  if (j >= dweight.size(1)) return;
  const int32_t id = segment_id[s];
  T acc = dweight(id, j);
  for (int32_t k = segment_start[s]; k < segment_start[s + 1]; ++k) acc += dout(order[k] / L, order[k] % L, j);
  dweight(id, j) = acc;
}
}  // namespace gpu

inline void embedding_backward_impl(Context<Cuda>& ctx, TensorView<const int32_t, 2, Cuda> ids,
                                    TensorView<const float, 3, Cuda> dout, TensorView<float, 2, Cuda> dweight,
                                    GradientMode mode) {
  const int64_t B = ids.size(0), L = ids.size(1), V = dweight.size(0), D = dweight.size(1), T = B * L;
  BIMAMBA_CHECK(T < (int64_t(1) << 31), "embedding_backward (Cuda): ", T, " positions exceed 2^31");
  const std::vector<int32_t> host_ids = gather_to_host(ctx, ids);  // (B, L) row-major
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const int32_t id = host_ids[size_t(b * L + l)];
      BIMAMBA_CHECK(id >= 0 && id < V, "embedding_backward: token id ", id, " at (", b, ", ", l,
                    ") is outside the vocabulary [0, ", V, ")");
    }
  zero_grad(ctx, dweight, mode);
  if (T == 0 || D == 0) return;
  // [order (T) | segment_start (S + 1) | segment_id (S)]: positions grouped by id, each group in position order.
  std::vector<int32_t> plan(static_cast<size_t>(T));
  std::iota(plan.begin(), plan.end(), 0);
  std::stable_sort(plan.begin(), plan.end(), [&](int32_t a, int32_t b) { return host_ids[size_t(a)] < host_ids[size_t(b)]; });
  std::vector<int32_t> starts, seg_ids;
  for (int64_t k = 0; k < T; ++k)
    if (k == 0 || host_ids[size_t(plan[size_t(k)])] != host_ids[size_t(plan[size_t(k - 1)])]) {
      starts.push_back(int32_t(k));
      seg_ids.push_back(host_ids[size_t(plan[size_t(k)])]);
    }
  const int64_t S = int64_t(seg_ids.size());
  starts.push_back(int32_t(T));
  plan.insert(plan.end(), starts.begin(), starts.end());
  plan.insert(plan.end(), seg_ids.begin(), seg_ids.end());
  WorkspaceScope<Cuda> scope(ctx.workspace());
  int32_t* device_plan = ctx.workspace().take<int32_t>(plan.size());
  // From pageable memory: the call returns once the bytes are staged, so `plan` may go out of scope.
  BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(device_plan, plan.data(), plan.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                                     ctx.stream()));
  const dim3 grid(unsigned(S), unsigned((D + gpu::kThreads - 1) / gpu::kThreads));
  gpu::embedding_segment_add_kernel<float><<<grid, gpu::kThreads, 0, ctx.stream()>>>(
      device_plan, device_plan + T, device_plan + T + S + 1, dout, dweight);
  gpu::check_launch();
}

}  // namespace bimamba::detail
