// The one cuBLAS call of the Cuda ops for fp32 matrices, in the context's GemmPrecision (core/context.hpp):
//   C (m, n) = op_a(A) (m, k) op_b(B) (k, n) + beta C        column-major, as cuBLAS; A, B, C float in memory
//   Fp32  cublasSgemm
//   Tf32  cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_TF32
//   Bf16  A and B rounded to dense bf16 copies in workspace scratch (a grid-stride pass each), then cublasGemmEx
//         bf16 x bf16 -> fp32 with CUBLAS_COMPUTE_32F. The copies cost one read of each operand in fp32 and one
//         write in bf16 (at the 780M shape a weight is 9.4 MB of fp32: ~5 us at HBM speed, against the GEMM's
//         tens of microseconds on fp32 FMA units).
// Dimensions must be below 2^31 (cuBLAS's int); k == 0 leaves beta C (cuBLAS's definition).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "../../core/workspace.hpp"
#include "../common.hpp"
#include "launch.cuh"

namespace bimamba::detail {

namespace gpu {
// dst (rows, cols, column-major, leading dimension rows) = bf16 of src (rows, cols, column-major, ld).
template <class T>
__global__ void to_bf16_kernel(const T* src, int64_t ld, int64_t rows, int64_t cols, __nv_bfloat16* dst) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16(src[(i / rows) * ld + i % rows]);
}
}  // namespace gpu

// A dense bf16 copy of the (rows, cols) column-major matrix at src with leading dimension ld, in scratch.
inline const __nv_bfloat16* bf16_copy(Context<Cuda>& ctx, const float* src, int64_t ld, int64_t rows, int64_t cols) {
  auto* dst = ctx.workspace().take<__nv_bfloat16>(size_t(rows * cols));
  if (rows * cols > 0) {
    gpu::to_bf16_kernel<float><<<gpu::grid_for(rows * cols), gpu::kThreads, 0, ctx.stream()>>>(src, ld, rows, cols, dst);
    gpu::check_launch();
  }
  return dst;
}

inline void gemm(Context<Cuda>& ctx, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kMax = int64_t(1) << 31;
  BIMAMBA_CHECK(m < kMax && n < kMax && k < kMax && lda < kMax && ldb < kMax && ldc < kMax,
                "gemm (Cuda): dimensions beyond 2^31 are not supported by cuBLAS, got m ", m, ", n ", n, ", k ", k);
  if (m == 0 || n == 0) return;
  const float one = 1.0f;
  cublasHandle_t handle = ctx.cublas();
  BIMAMBA_CUBLAS_CHECK(cublasSetStream(handle, ctx.stream()));
  switch (ctx.gemm_precision()) {
    case GemmPrecision::Fp32:
      BIMAMBA_CUBLAS_CHECK(cublasSgemm(handle, op_a, op_b, int(m), int(n), int(k), &one, A, int(lda), B, int(ldb), &beta,
                                       C, int(ldc)));
      return;
    case GemmPrecision::Tf32:
      BIMAMBA_CUBLAS_CHECK(cublasGemmEx(handle, op_a, op_b, int(m), int(n), int(k), &one, A, CUDA_R_32F, int(lda), B,
                                        CUDA_R_32F, int(ldb), &beta, C, CUDA_R_32F, int(ldc),
                                        CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
      return;
    case GemmPrecision::Bf16: {
      WorkspaceScope<Cuda> scope(ctx.workspace());
      const bool a_n = op_a == CUBLAS_OP_N, b_n = op_b == CUBLAS_OP_N;
      const int64_t a_rows = a_n ? m : k, a_cols = a_n ? k : m, b_rows = b_n ? k : n, b_cols = b_n ? n : k;
      const __nv_bfloat16* a16 = bf16_copy(ctx, A, lda, a_rows, a_cols);
      const __nv_bfloat16* b16 = bf16_copy(ctx, B, ldb, b_rows, b_cols);
      BIMAMBA_CUBLAS_CHECK(cublasGemmEx(handle, op_a, op_b, int(m), int(n), int(k), &one, a16, CUDA_R_16BF,
                                        int(std::max<int64_t>(a_rows, 1)), b16, CUDA_R_16BF,
                                        int(std::max<int64_t>(b_rows, 1)), &beta, C, CUDA_R_32F, int(ldc),
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return;
    }
  }
}

}  // namespace bimamba::detail
