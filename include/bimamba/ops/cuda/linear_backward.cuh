// Cuda dense linear backward (see ops/linear_backward.hpp): two GEMMs (ops/cuda/gemm.cuh, in the context's
// GemmPrecision) and one column sum. Row-major (r, c) with row stride ld is column-major (c, r), so
//   dx^T (in, T)  = W^T (in, out) dy^T (out, T)  ->  gemm(N, N, m = in,  n = T,   k = out, W,  dy)
//   dW^T (in, out) = x^T (in, T)  dy (T, out)    ->  gemm(N, T, m = in,  n = out, k = T,   x,  dy)
// with beta = 0 (Overwrite) or 1 (Accumulate). dbias: the column sums of dy over tokens in double
// (column_reduce, ops/cuda/column_reduce.cuh). Every matrix needs a unit stride along its last dimension.
#pragma once

#include <algorithm>

#include "../common.hpp"
#include "column_reduce.cuh"
#include "gemm.cuh"

namespace bimamba::detail {

namespace gpu {
template <class T>
struct ColumnValue {
  TensorView<const T, 2, Cuda> m;
  __device__ ColumnTerms<1> operator()(int64_t t, int64_t o) const { return {{double(m(t, o))}}; }
};
}  // namespace gpu

// C (rows, cols, row-major) (= or +=) op(A) op(B) in the column-major reading above; see the top comment.
inline void gemm_rowmajor(Context<Cuda>& ctx, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc, GradientMode mode) {
  gemm(ctx, CUBLAS_OP_N, op_b, m, n, k, A, lda, B, ldb, mode == GradientMode::Overwrite ? 0.0f : 1.0f, C, ldc);
}

template <class V>
void check_rows_contiguous(const V& v, const char* what) {
  BIMAMBA_CHECK(v.numel() == 0 || v.size(1) == 1 || v.stride(1) == 1, "linear_backward (Cuda): ", what,
                " needs a unit stride along its last dimension, got ", v.stride(1));
}

// dx (T, in) (= or +=) dy (T, out) W (out, in).
inline void linear_dx(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> W, TensorView<const float, 2, Cuda> dy,
                      TensorView<float, 2, Cuda> dx, GradientMode mode) {
  const int64_t T = dy.size(0), out = dy.size(1), in = W.size(1);
  if (dx.numel() == 0) return;
  if (out == 0) return zero_grad(ctx, dx, mode);
  check_rows_contiguous(W, "W");
  check_rows_contiguous(dy, "dy");
  check_rows_contiguous(dx, "dx");
  gemm_rowmajor(ctx, CUBLAS_OP_N, in, T, out, W.data(), std::max(W.stride(0), in), dy.data(), std::max(dy.stride(0), out),
                dx.data(), std::max(dx.stride(0), in), mode);
}

// dW (out, in) (= or +=) dy^T (out, T) x (T, in).
inline void linear_dw(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> dy,
                      TensorView<float, 2, Cuda> dW, GradientMode mode) {
  const int64_t T = x.size(0), in = x.size(1), out = dy.size(1);
  if (dW.numel() == 0) return;
  if (T == 0) return zero_grad(ctx, dW, mode);
  check_rows_contiguous(x, "x");
  check_rows_contiguous(dy, "dy");
  check_rows_contiguous(dW, "dW");
  gemm_rowmajor(ctx, CUBLAS_OP_T, in, out, T, x.data(), std::max(x.stride(0), in), dy.data(), std::max(dy.stride(0), out),
                dW.data(), std::max(dW.stride(0), in), mode);
}

inline void linear_backward_impl(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                 TensorView<const float, 2, Cuda> W, TensorView<const float, 2, Cuda> dy,
                                 TensorView<float, 2, Cuda> dx, TensorView<float, 2, Cuda> dW,
                                 TensorView<float, 1, Cuda> dbias, GradientMode mode) {
  if (present(dx)) linear_dx(ctx, W, dy, dx, mode);
  if (present(dW)) linear_dw(ctx, x, dy, dW, mode);
  if (present(dbias))
    column_reduce<1>(ctx, dy.size(0), dbias.size(0), gpu::ColumnValue<float>{dy}, gpu::PutColumnGrad<float>{dbias, mode});
}

}  // namespace bimamba::detail
