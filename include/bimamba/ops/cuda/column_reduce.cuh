// Deterministic column sums on the device, the reduction behind every weight gradient that sums over rows
// (tokens, or the output rows of dL/dW_eff):
//   s_k[j] = sum_{i < rows} term(i, j)[k]      k < K, j < cols, in double, then finish(j, s)
// Rows are cut into slabs of kColumnSlabRows. Kernel 1 gives each (32 columns, slab) a block of 32 x 8 threads:
// lane (x, y) sums rows y, y + 8, ... of the slab for column x (a warp reads 32 consecutive columns of one row:
// coalesced), then the 8 partial sums are added in y order and written to scratch. Kernel 2, one thread per
// column, adds the slabs in order and calls finish. The order of every addition depends only on (rows, cols), so
// reruns give the same bits on any GPU; it is not the host's single row-order loop, so device and host agree to
// rounding of a double sum (far below the float result's own rounding).
//
// Why not one thread per column walking all rows (what the first kernels did): at cols = 1536 that is 6 blocks
// on a 132-SM GPU, each thread a 6,000-step dependent chain; 2.2 ms per in_proj gradient at the 780M shape.
//
// Term:   __device__ ColumnTerms<K> operator()(int64_t i, int64_t j) const  (may also write element (i, j) of
//         an element-wise output: it is called exactly once per (i, j))
// Finish: __device__ void operator()(int64_t j, const ColumnTerms<K>& s) const
// Scratch: slabs x K x cols doubles from ctx.workspace(), released on return.
#pragma once

#include "../../core/workspace.hpp"
#include "launch_backward.cuh"

namespace bimamba::detail {

inline constexpr int64_t kColumnSlabRows = 64;

template <int K>
struct ColumnTerms {
  double v[K];
};

namespace gpu {
inline constexpr int kColumnBlockX = 32, kColumnBlockY = 8;

template <int K, class Term>
__global__ void __launch_bounds__(kColumnBlockX* kColumnBlockY)
    column_partials_kernel(int64_t rows, int64_t cols, Term term, double* partials) {
  __shared__ double lanes[K][kColumnBlockY][kColumnBlockX];
  const int64_t j = blockIdx.x * int64_t(kColumnBlockX) + threadIdx.x;
  const int64_t first = blockIdx.y * kColumnSlabRows, last = min(rows, first + kColumnSlabRows);
  double s[K] = {};
  if (j < cols)
    for (int64_t i = first + threadIdx.y; i < last; i += kColumnBlockY) {
      const ColumnTerms<K> t = term(i, j);
#pragma unroll
      for (int k = 0; k < K; ++k) s[k] += t.v[k];
    }
#pragma unroll
  for (int k = 0; k < K; ++k) lanes[k][threadIdx.y][threadIdx.x] = s[k];
  __syncthreads();
  if (threadIdx.y != 0 || j >= cols) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    double total = 0;
    for (int y = 0; y < kColumnBlockY; ++y) total += lanes[k][y][threadIdx.x];
    partials[(blockIdx.y * int64_t(K) + k) * cols + j] = total;
  }
}

template <int K, class Finish>
__global__ void column_finish_kernel(int64_t cols, int64_t slabs, const double* partials, Finish finish) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  ColumnTerms<K> s = {};
  for (int64_t b = 0; b < slabs; ++b)
#pragma unroll
    for (int k = 0; k < K; ++k) s.v[k] += partials[(b * K + k) * cols + j];
  finish(j, s);
}

// The usual finish of a weight gradient: g[j] = s (Overwrite) or g[j] += s (Accumulate).
template <class T>
struct PutColumnGrad {
  TensorView<T, 1, Cuda> g;
  GradientMode mode;
  __device__ void operator()(int64_t j, const ColumnTerms<1>& s) const { put_grad(g(j), s.v[0], mode); }
};

// The terms of a dense (rows, cols) double matrix at p, rows ld apart: the per-tile partial sums of kernels that
// reduce their own tiles first (conv1d, gated norm backward).
struct MatrixTerm {
  const double* p;
  int64_t ld;
  __device__ ColumnTerms<1> operator()(int64_t i, int64_t j) const { return {{p[i * ld + j]}}; }
};

// Two weight gradients from one pass (FBI-Linear's dalpha and dbeta): g0[j] from s[0], g1[j] from s[1]; either
// may be an empty view.
template <class T>
struct PutColumnGradPair {
  TensorView<T, 1, Cuda> g0, g1;
  GradientMode mode;
  __device__ void operator()(int64_t j, const ColumnTerms<2>& s) const {
    if (present(g0)) put_grad(g0(j), s.v[0], mode);
    if (present(g1)) put_grad(g1(j), s.v[1], mode);
  }
};
}  // namespace gpu

template <int K, class Term, class Finish>
void column_reduce(Context<Cuda>& ctx, int64_t rows, int64_t cols, const Term& term, const Finish& finish) {
  if (cols <= 0) return;
  const int64_t slabs = std::max<int64_t>(1, (rows + kColumnSlabRows - 1) / kColumnSlabRows);
  BIMAMBA_CHECK(slabs <= 65535, "column_reduce (Cuda): at most 65535 x ", kColumnSlabRows, " rows, got ", rows);
  WorkspaceScope<Cuda> scope(ctx.workspace());
  double* partials = ctx.workspace().take<double>(size_t(slabs * K * cols));  // (slabs, K, cols)
  const dim3 grid(unsigned((cols + gpu::kColumnBlockX - 1) / gpu::kColumnBlockX), unsigned(slabs));
  gpu::column_partials_kernel<K, Term>
      <<<grid, dim3(gpu::kColumnBlockX, gpu::kColumnBlockY), 0, ctx.stream()>>>(rows, cols, term, partials);
  gpu::check_launch();
  gpu::column_finish_kernel<K, Finish>
      <<<unsigned((cols + gpu::kThreads - 1) / gpu::kThreads), gpu::kThreads, 0, ctx.stream()>>>(cols, slabs, partials,
                                                                                                  finish);
  gpu::check_launch();
}

}  // namespace bimamba::detail
