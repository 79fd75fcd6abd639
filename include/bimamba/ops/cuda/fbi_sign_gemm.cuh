// Cuda latent FBI-Linear in bf16 (GemmPrecision::Bf16, mixed-precision training) through sign GEMMs. With
// S = s(W) in {-1, +1} (exact in bf16), W_eff = S diag(alpha) + 1 beta^T, so padding the inner dimension to
// kp = in + 1 rounded up to a multiple of 8 (tensor-core alignment):
//   S+ (out, kp) = [S | 1 | 0]                X+ (T, kp) = [x diag(alpha) | x beta | 0]          (bf16)
//   forward:  y = X+ S+^T                     one GEMM, the beta term included (DESIGN.md's y = S (alpha x) + beta.x)
//   backward: Y+ = dy S+ (T, kp):             Y = dy S and r = Y+[:, in] = the row sums of dy
//             dx[t, j]  = alpha_j Y[t, j] + beta_j r_t
//             dW        = dy^T X+[:, :in]      (= alpha_j G[i, j] with G = dy^T x: no G, no pass over it)
//             dalpha_j  = sum_t x[t, j] Y[t, j],   dbeta_j = sum_t x[t, j] r_t     (column_reduce, double)
// Against the generic Bf16 gemm on W_eff (what Fp32 / Tf32 still take, ops/cuda/fbi_linear_backward.cuh): no
// fp32 W_eff or G (out x in each), no pass over G, one bf16 sign matrix instead of W_eff's copy; the bf16
// rounding moves from W_eff to alpha x and x . beta, so the result agrees with the fp32 layer to bf16 rounding.
// Scratch (ctx.workspace()): S+ (out x kp) and X+ (T x kp) bf16, dy in bf16 (T x out) and Y+ (T x kp floats).
// Contracts: y, dW, dy with unit stride along their last dimension; x, dx any strides. Profiler ranges in the
// backward: dw_gemm, dx (Y+ and the column sums).
#pragma once

#include <cuda_bf16.h>

#include "../../core/profile_range.hpp"
#include "../../core/workspace.hpp"
#include "column_reduce.cuh"
#include "gemm.cuh"
#include "launch_backward.cuh"

namespace bimamba::detail {

// The padded inner dimension of the sign GEMMs.
inline int64_t fbi_sign_inner(int64_t in) { return (in + 1 + 7) / 8 * 8; }

// Whether the sign GEMMs beat W_eff for T rows into `out` outputs. Their extra passes are activation-sized (X+ and
// Y+: T x kp), W_eff's are weight-sized (W_eff, its bf16 copy, G: out x in), so the sign GEMMs pay while T is at
// most about twice `out`. Measured at the 780M shape in bf16 on an H100 (bench/RESULTS_CUDA.md, session 17):
// in_proj (out 6448) is faster through the sign GEMMs at T = 2048 and 8192 (backward 21.2 -> 13.5 ms and 49.6 ->
// 42.5 ms a step), out_proj (out 1536) at T = 2048 (10.6 -> 9.8 ms) but not at T = 8192 (24.1 -> 29.5 ms).
inline bool fbi_sign_gemm_pays(int64_t T, int64_t out) { return T <= 2 * out; }

namespace gpu {
// S+ (out, kp) row-major: columns on x (coalesced), rows on y (grid-stride past 65535). With `quads` (in a
// multiple of 4, W's rows in aligned float4s) a thread takes four columns: a quad lies wholly in W or in the padding
// (kp is a multiple of 8), one float4 load and one 8-byte store (session 20: one column a thread took 41 us for the
// 780M in_proj on an H100, 1.5 TB/s).
template <class T>
__global__ void fbi_signs_kernel(TensorView<const T, 2, Cuda> W, int64_t kp, __nv_bfloat16* S, bool quads) {
  const int64_t in = W.size(1), u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  auto sign = [](float w) { return w >= 0.0f ? 1.0f : -1.0f; };
  auto pad = [&](int64_t j) { return j == in ? 1.0f : 0.0f; };
  if (quads) {
    const int64_t j = 4 * u;
    if (j >= kp) return;
    for (int64_t i = blockIdx.y; i < W.size(0); i += gridDim.y) {
      float4 v;
      if (j < in) {
        const float4 w = *reinterpret_cast<const float4*>(&W(i, j));
        v = make_float4(sign(w.x), sign(w.y), sign(w.z), sign(w.w));
      } else {
        v = make_float4(pad(j), pad(j + 1), pad(j + 2), pad(j + 3));
      }
      store_bf16_quad(S + i * kp + j, v);
    }
    return;
  }
  if (u >= kp) return;
  for (int64_t i = blockIdx.y; i < W.size(0); i += gridDim.y)
    S[i * kp + u] = __float2bfloat16(u < in ? sign(W(i, u)) : pad(u));
}

// X+ (T, kp) row-major, a block per token: alpha x, then x . beta (double block sum), then zeros. With `quads` (in
// a multiple of 4; x's rows, alpha and beta in aligned float4s) a thread takes four columns at a time.
template <class T>
__global__ void fbi_scaled_rows_kernel(TensorView<const T, 2, Cuda> x, TensorView<const T, 1, Cuda> alpha,
                                       TensorView<const T, 1, Cuda> beta, int64_t kp, __nv_bfloat16* X, bool quads) {
  __shared__ double scratch[32];
  const int64_t t = blockIdx.x, in = x.size(1);
  __nv_bfloat16* row = X + t * kp;
  double dot = 0;
  if (quads) {
    for (int64_t j = 4 * threadIdx.x; j < in; j += 4 * blockDim.x) {
      const float4 v = *reinterpret_cast<const float4*>(&x(t, j));
      const float4 a = *reinterpret_cast<const float4*>(&alpha(j)), b = *reinterpret_cast<const float4*>(&beta(j));
      store_bf16_quad(row + j, make_float4(a.x * v.x, a.y * v.y, a.z * v.z, a.w * v.w));
      dot += double(b.x) * v.x + double(b.y) * v.y + double(b.z) * v.z + double(b.w) * v.w;
    }
  } else {
    for (int64_t j = threadIdx.x; j < in; j += blockDim.x) {
      const float v = x(t, j);
      row[j] = __float2bfloat16(alpha(j) * v);
      dot += double(beta(j)) * v;
    }
  }
  dot = block_sum(dot, scratch);
  for (int64_t j = in + threadIdx.x; j < kp; j += blockDim.x) row[j] = __float2bfloat16(j == in ? float(dot) : 0.0f);
}

// Row t, column j of the backward: writes dx[t, j]; the terms of dalpha[j] and dbeta[j].
template <class T>
struct FbiSignGradTerm {
  TensorView<const T, 2, Cuda> x;
  const float* Y;  // Y+ (T, kp)
  int64_t kp;
  TensorView<const T, 1, Cuda> alpha, beta;
  TensorView<T, 2, Cuda> dx;
  GradientMode dx_mode;
  __device__ ColumnTerms<2> operator()(int64_t t, int64_t j) const {
    const double y = Y[t * kp + j], r = Y[t * kp + x.size(1)], v = x(t, j);
    if (present(dx)) put_grad(dx(t, j), double(alpha(j)) * y + double(beta(j)) * r, dx_mode);
    return {{v * y, v * r}};
  }
};
}  // namespace gpu

// S+ of W in scratch.
inline const __nv_bfloat16* fbi_signs(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> W, int64_t kp) {
  const int64_t out = W.size(0);
  auto* S = ctx.workspace().take<__nv_bfloat16>(size_t(out * kp));
  if (out > 0) {
    const bool quads = W.size(1) % 4 == 0 && gpu::float4_rows(W);
    const int64_t items = quads ? kp / 4 : kp;
    const dim3 grid(unsigned((items + gpu::kThreads - 1) / gpu::kThreads), unsigned(std::min<int64_t>(out, 65535)));
    gpu::fbi_signs_kernel<float><<<grid, gpu::kThreads, 0, ctx.stream()>>>(W, kp, S, quads);
    gpu::check_launch();
  }
  return S;
}

// X+ of x in scratch.
inline const __nv_bfloat16* fbi_scaled_rows(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x,
                                            TensorView<const float, 1, Cuda> alpha,
                                            TensorView<const float, 1, Cuda> beta, int64_t kp) {
  const int64_t T = x.size(0);
  BIMAMBA_CHECK(T < (int64_t(1) << 31), "fbi_linear (Cuda, bf16): ", T, " tokens exceed the grid limit 2^31 - 1");
  auto* X = ctx.workspace().take<__nv_bfloat16>(size_t(T * kp));
  if (T > 0) {
    const bool quads =
        x.size(1) % 4 == 0 && gpu::float4_rows(x) && gpu::float4_rows(alpha) && gpu::float4_rows(beta);
    gpu::fbi_scaled_rows_kernel<float><<<unsigned(T), gpu::row_threads(quads ? kp / 4 : kp), 0, ctx.stream()>>>(
        x, alpha, beta, kp, X, quads);
    gpu::check_launch();
  }
  return X;
}

// y (T, out) = x W_eff^T.
inline void fbi_sign_forward(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> W,
                             TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                             TensorView<float, 2, Cuda> y) {
  const int64_t T = x.size(0), out = W.size(0), kp = fbi_sign_inner(x.size(1));
  WorkspaceScope<Cuda> scope(ctx.workspace());
  const __nv_bfloat16* S = fbi_signs(ctx, W, kp);
  const __nv_bfloat16* X = fbi_scaled_rows(ctx, x, alpha, beta, kp);
  gemm_bf16(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out, T, kp, S, kp, X, kp, 0.0f, y.data(), std::max(y.stride(0), out));
}

// dx under dx_mode; dW, dalpha, dbeta under mode; any may be empty.
inline void fbi_sign_backward(Context<Cuda>& ctx, TensorView<const float, 2, Cuda> x, TensorView<const float, 2, Cuda> W,
                              TensorView<const float, 1, Cuda> alpha, TensorView<const float, 1, Cuda> beta,
                              TensorView<const float, 2, Cuda> dy, TensorView<float, 2, Cuda> dx,
                              TensorView<float, 2, Cuda> dW, TensorView<float, 1, Cuda> dalpha,
                              TensorView<float, 1, Cuda> dbeta, GradientMode dx_mode, GradientMode mode) {
  const int64_t T = x.size(0), in = x.size(1), out = W.size(0), kp = fbi_sign_inner(in);
  BIMAMBA_CHECK(dy.numel() == 0 || out <= 1 || dy.stride(1) == 1,
                "fbi_linear_backward (Cuda, bf16): dy needs a unit stride along its last dimension");
  auto& ws = ctx.workspace();
  WorkspaceScope<Cuda> scope(ws);
  const __nv_bfloat16* dy16 = bf16_copy(ctx, dy.data(), std::max(dy.stride(0), out), out, T);  // (T, out) dense
  if (present(dW)) {
    ProfileRange<Cuda> range(ctx, "dw_gemm");
    BIMAMBA_CHECK(dW.numel() == 0 || in <= 1 || dW.stride(1) == 1,
                  "fbi_linear_backward (Cuda, bf16): dW needs a unit stride along its last dimension");
    const __nv_bfloat16* X = fbi_scaled_rows(ctx, x, alpha, beta, kp);
    // dW^T (in, out) column-major = X+[:, :in]^T (in, T) dy (T, out).
    gemm_bf16(ctx, CUBLAS_OP_N, CUBLAS_OP_T, in, out, T, X, kp, dy16, out,
              mode == GradientMode::Overwrite ? 0.0f : 1.0f, dW.data(), std::max(dW.stride(0), in));
  }
  if (!present(dx) && !present(dalpha) && !present(dbeta)) return;
  ProfileRange<Cuda> range(ctx, "dx");
  const __nv_bfloat16* S = fbi_signs(ctx, W, kp);
  float* Y = ws.take<float>(size_t(T * kp));  // (T, kp) Y+
  // Y+^T (kp, T) column-major = S+^T (kp, out) dy^T (out, T).
  gemm_bf16(ctx, CUBLAS_OP_N, CUBLAS_OP_N, kp, T, out, S, kp, dy16, out, 0.0f, Y, kp);
  column_reduce<2>(ctx, T, in, gpu::FbiSignGradTerm<float>{x, Y, kp, alpha, beta, dx, dx_mode},
                   gpu::PutColumnGradPair<float>{dalpha, dbeta, mode});
}

}  // namespace bimamba::detail
