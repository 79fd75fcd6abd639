// The one cuBLAS call of the Cuda ops for fp32 matrices, in the context's GemmPrecision (core/context.hpp):
//   C (m, n) = op_a(A) (m, k) op_b(B) (k, n) + beta C        column-major, as cuBLAS; A, B, C float in memory
//   Fp32  cublasSgemm
//   Tf32  cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_TF32
//   Bf16  A and B rounded to dense bf16 copies in workspace scratch (a grid-stride pass each), then cublasGemmEx
//         bf16 x bf16 -> fp32 with CUBLAS_COMPUTE_32F. The copies cost one read of each operand in fp32 and one
//         write in bf16 (at the 780M shape a weight is 9.4 MB of fp32: ~5 us at HBM speed, against the GEMM's
//         tens of microseconds on fp32 FMA units).
// Dimensions must be below 2^31 (cuBLAS's int); k == 0 leaves beta C (cuBLAS's definition).
//
// gemm_batched: the same product for `count` triples of matrices of one shape whose addresses are
// base + i0 t0 + i1 t1 + i2 t2 + i3 t3 over a grid (n0, n1, n2, n3) of batch indices (BatchGrid, four strides per
// operand: batch x chunks x groups x heads of a scan, whose strides are not uniform when a sequence ends in a
// partial chunk). The pointer arrays are written by one small kernel into workspace scratch, so the call is
// stream ordered and graph capturable. Fp32: cublasSgemmBatched; Tf32 and Bf16: TF32 tensor cores
// (cublasGemmBatchedEx, CUBLAS_COMPUTE_32F_FAST_TF32): its callers (the SSD scan) keep fp32 operands.
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
// Four floats rounded to bf16 and stored at dst (8-byte aligned) in one store.
struct alignas(8) Bf16Quad {
  __nv_bfloat162 lo, hi;
};
__device__ inline void store_bf16_quad(__nv_bfloat16* dst, float4 v) {
  *reinterpret_cast<Bf16Quad*>(dst) = Bf16Quad{__floats2bfloat162_rn(v.x, v.y), __floats2bfloat162_rn(v.z, v.w)};
}

// dst (rows, cols, column-major, leading dimension rows) = bf16 of src (rows, cols, column-major, ld).
// Rows on x, columns on y (grid-stride past 65535): no division per element. With `quads` (rows and ld multiples
// of 4, src 16-byte aligned) a thread takes four rows: one float4 load and one 8-byte store (session 20: the
// single-element form copied 8192 x 3072 in 84 us on an H100, 1.8 TB/s).
template <class T>
__global__ void to_bf16_kernel(const T* src, int64_t ld, int rows, int64_t cols, __nv_bfloat16* dst, bool quads) {
  const int t = int(blockIdx.x) * int(blockDim.x) + int(threadIdx.x);
  if (quads) {
    const int r = 4 * t;
    if (r >= rows) return;
    for (int64_t c = blockIdx.y; c < cols; c += gridDim.y)
      store_bf16_quad(dst + c * rows + r, *reinterpret_cast<const float4*>(src + c * ld + r));
    return;
  }
  if (t >= rows) return;
  for (int64_t c = blockIdx.y; c < cols; c += gridDim.y) dst[c * rows + t] = __float2bfloat16(src[c * ld + t]);
}

// Addresses of one operand over the batch grid: base + sum_d i_d * stride[d].
struct BatchOperand {
  const float* base;
  int64_t stride[4];
};
struct BatchGrid {
  int64_t n[4];
  BIMAMBA_HOST_DEVICE int64_t count() const { return n[0] * n[1] * n[2] * n[3]; }
};

// ptrs[o * count + i] = the address of operand o for batch index i = ((i0 n1 + i1) n2 + i2) n3 + i3.
template <class T>
__global__ void batch_pointers_kernel(BatchGrid grid, BatchOperand a, BatchOperand b, BatchOperand c, const T** ptrs) {
  const int64_t count = grid.count();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const BatchOperand ops[3] = {a, b, c};
    for (int o = 0; o < 3; ++o) {
      int64_t rest = i, offset = 0;
      for (int d = 3; d >= 0; --d) {
        offset += (rest % grid.n[d]) * ops[o].stride[d];
        rest /= grid.n[d];
      }
      ptrs[o * count + i] = ops[o].base + offset;
    }
  }
}
}  // namespace gpu

// A dense bf16 copy of the (rows, cols) column-major matrix at src with leading dimension ld, in scratch.
inline const __nv_bfloat16* bf16_copy(Context<Cuda>& ctx, const float* src, int64_t ld, int64_t rows, int64_t cols) {
  auto* dst = ctx.workspace().take<__nv_bfloat16>(size_t(rows * cols));
  if (rows * cols > 0) {
    BIMAMBA_CHECK(rows < (int64_t(1) << 31), "bf16_copy: ", rows, " rows exceed the kernel's 32-bit row index");
    const bool quads = rows % 4 == 0 && (ld % 4 == 0 || cols == 1) && reinterpret_cast<uintptr_t>(src) % 16 == 0;
    const int64_t per_thread = quads ? 4 : 1, items = (rows + per_thread - 1) / per_thread;
    const int threads = int(std::min<int64_t>(gpu::kThreads, (items + 31) / 32 * 32));
    const dim3 grid(unsigned((items + threads - 1) / threads), unsigned(std::min<int64_t>(cols, 65535)));
    gpu::to_bf16_kernel<float><<<grid, threads, 0, ctx.stream()>>>(src, ld, int(rows), cols, dst, quads);
    gpu::check_launch();
  }
  return dst;
}

// The cuBLAS handle on ctx's stream for an (m, n, k) product; throws on dimensions cuBLAS's int cannot hold.
inline cublasHandle_t gemm_handle(Context<Cuda>& ctx, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                                  int64_t ldc) {
  constexpr int64_t kMax = int64_t(1) << 31;
  BIMAMBA_CHECK(m < kMax && n < kMax && k < kMax && lda < kMax && ldb < kMax && ldc < kMax,
                "gemm (Cuda): dimensions beyond 2^31 are not supported by cuBLAS, got m ", m, ", n ", n, ", k ", k);
  cublasHandle_t handle = ctx.cublas();
  BIMAMBA_CUBLAS_CHECK(cublasSetStream(handle, ctx.stream()));
  return handle;
}

// C (m, n) = op_a(A) op_b(B) + beta C with A, B already bf16 (column-major, leading dimensions lda, ldb), C
// fp32; bf16 tensor cores, fp32 accumulation. The Bf16 case of gemm, for callers that build their bf16 operands
// themselves (the FBI-Linear sign GEMMs, ops/cuda/fbi_sign_gemm.cuh).
inline void gemm_bf16(Context<Cuda>& ctx, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n,
                      int64_t k, const __nv_bfloat16* A, int64_t lda, const __nv_bfloat16* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) {
  cublasHandle_t handle = gemm_handle(ctx, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  const float one = 1.0f;
  BIMAMBA_CUBLAS_CHECK(cublasGemmEx(handle, op_a, op_b, int(m), int(n), int(k), &one, A, CUDA_R_16BF,
                                    int(std::max<int64_t>(lda, 1)), B, CUDA_R_16BF, int(std::max<int64_t>(ldb, 1)),
                                    &beta, C, CUDA_R_32F, int(std::max<int64_t>(ldc, 1)), CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
}

inline void gemm(Context<Cuda>& ctx, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cublasHandle_t handle = gemm_handle(ctx, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  const float one = 1.0f;
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
      gemm_bf16(ctx, op_a, op_b, m, n, k, a16, a_rows, b16, b_rows, beta, C, ldc);
      return;
    }
  }
}

inline void gemm_batched(Context<Cuda>& ctx, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n,
                         int64_t k, gpu::BatchGrid batch, gpu::BatchOperand A, int64_t lda, gpu::BatchOperand B,
                         int64_t ldb, float beta, gpu::BatchOperand C, int64_t ldc) {
  constexpr int64_t kMax = int64_t(1) << 31;
  const int64_t count = batch.count();
  BIMAMBA_CHECK(m < kMax && n < kMax && k < kMax && lda < kMax && ldb < kMax && ldc < kMax && count < kMax,
                "gemm_batched (Cuda): dimensions beyond 2^31 are not supported by cuBLAS, got m ", m, ", n ", n, ", k ",
                k, ", batch ", count);
  if (m == 0 || n == 0 || count == 0) return;
  WorkspaceScope<Cuda> scope(ctx.workspace());
  const float** ptrs = ctx.workspace().take<const float*>(size_t(3 * count));
  gpu::batch_pointers_kernel<float><<<gpu::grid_for(count), gpu::kThreads, 0, ctx.stream()>>>(batch, A, B, C, ptrs);
  gpu::check_launch();
  const float* const* a = ptrs;
  const float* const* b = ptrs + count;
  float* const* c = const_cast<float* const*>(ptrs + 2 * count);
  const float one = 1.0f;
  cublasHandle_t handle = ctx.cublas();
  BIMAMBA_CUBLAS_CHECK(cublasSetStream(handle, ctx.stream()));
  if (ctx.gemm_precision() == GemmPrecision::Fp32) {
    BIMAMBA_CUBLAS_CHECK(cublasSgemmBatched(handle, op_a, op_b, int(m), int(n), int(k), &one, a, int(lda), b, int(ldb),
                                            &beta, c, int(ldc), int(count)));
  } else {
    BIMAMBA_CUBLAS_CHECK(cublasGemmBatchedEx(handle, op_a, op_b, int(m), int(n), int(k), &one,
                                             reinterpret_cast<const void* const*>(a), CUDA_R_32F, int(lda),
                                             reinterpret_cast<const void* const*>(b), CUDA_R_32F, int(ldb), &beta,
                                             reinterpret_cast<void* const*>(c), CUDA_R_32F, int(ldc), int(count),
                                             CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace bimamba::detail
