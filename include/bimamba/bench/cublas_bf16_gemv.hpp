// CublasBf16Gemv: the peer a packed FBI GEMV is measured against, y (T, out) = x (T, in) W^T with W, x and y
// in bf16 and fp32 accumulation (cublasGemmEx), as a user without 1-bit kernels would run the layer.
//
//   CublasBf16Gemv peer(stream, w, x, copies);  // w: out x in, x: T x in (host fp32 values, rounded to bf16)
//   peer.call(c);                               // enqueues the product with weight copy c % copies
//   double err = peer.validation_error();       // relative L2 of y's first <= 64 rows of every token against
//                                               // the double product of the bf16-rounded inputs (~1e-3)
//
// `copies` weight copies let consecutive calls stream W from HBM (pick copies x 2 out in bytes beyond L2).
// The handle has a fixed workspace, so call() can be captured into a CUDA graph (bench/cuda_timing.hpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/cuda_runtime.hpp"

namespace bimamba {

class CublasBf16Gemv {
 public:
  CublasBf16Gemv(cudaStream_t stream, const std::vector<float>& w, const std::vector<float>& x, int64_t out,
                 int64_t in, int64_t copies)
      : out_(out), in_(in), tokens_(int64_t(x.size()) / std::max<int64_t>(in, 1)), stream_(stream) {
    BIMAMBA_CHECK(out > 0 && in > 0 && copies > 0 && int64_t(w.size()) == out * in && int64_t(x.size()) == tokens_ * in &&
                      tokens_ > 0,
                  "CublasBf16Gemv: w of ", w.size(), " values for ", out, " x ", in, ", x of ", x.size(), ", ", copies,
                  " copies");
    wb_.resize(w.size());
    xb_.resize(x.size());
    for (size_t i = 0; i < w.size(); ++i) wb_[i] = __float2bfloat16(w[i]);
    for (size_t i = 0; i < x.size(); ++i) xb_[i] = __float2bfloat16(x[i]);
    BIMAMBA_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
      BIMAMBA_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      BIMAMBA_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
      BIMAMBA_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
      weights_.assign(size_t(copies), nullptr);
      for (auto& p : weights_) {
        BIMAMBA_CUDA_CHECK(cudaMalloc(&p, weight_bytes()));
        BIMAMBA_CUDA_CHECK(cudaMemcpy(p, wb_.data(), weight_bytes(), cudaMemcpyHostToDevice));
      }
      BIMAMBA_CUDA_CHECK(cudaMalloc(&x_, xb_.size() * sizeof(__nv_bfloat16)));
      BIMAMBA_CUDA_CHECK(cudaMalloc(&y_, size_t(tokens_ * out) * sizeof(__nv_bfloat16)));
      BIMAMBA_CUDA_CHECK(cudaMemcpy(x_, xb_.data(), xb_.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
    } catch (...) {
      release();
      throw;
    }
  }
  CublasBf16Gemv(const CublasBf16Gemv&) = delete;
  CublasBf16Gemv& operator=(const CublasBf16Gemv&) = delete;
  ~CublasBf16Gemv() { release(); }

  size_t weight_bytes() const { return size_t(out_ * in_) * sizeof(__nv_bfloat16); }
  int64_t copies() const { return int64_t(weights_.size()); }

  void call(int64_t c) {
    const float one = 1.0f, zero = 0.0f;
    // Row-major y (T, out) = x W^T is column-major y^T = W x^T: op(A) = W^T of the column-major (in, out) W.
    BIMAMBA_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, int(out_), int(tokens_), int(in_), &one,
                                      weights_[size_t(c % copies())], CUDA_R_16BF, int(in_), x_, CUDA_R_16BF, int(in_),
                                      &zero, y_, CUDA_R_16BF, int(out_), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  double validation_error() {
    call(0);
    BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<__nv_bfloat16> yb(size_t(tokens_ * out_));
    BIMAMBA_CUDA_CHECK(cudaMemcpy(yb.data(), y_, yb.size() * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (int64_t t = 0; t < tokens_; ++t)
      for (int64_t i = 0; i < std::min<int64_t>(out_, 64); ++i) {
        double want = 0;
        for (int64_t j = 0; j < in_; ++j)
          want += double(__bfloat162float(wb_[size_t(i * in_ + j)])) * __bfloat162float(xb_[size_t(t * in_ + j)]);
        const double got = __bfloat162float(yb[size_t(t * out_ + i)]);
        num += (got - want) * (got - want);
        den += want * want;
      }
    return std::sqrt(num / std::max(den, 1e-300));
  }

 private:
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

  void release() {
    for (auto p : weights_) (void)cudaFree(p);
    weights_.clear();
    if (x_) (void)cudaFree(x_);
    if (y_) (void)cudaFree(y_);
    if (workspace_) (void)cudaFree(workspace_);
    if (handle_) (void)cublasDestroy(handle_);
    x_ = y_ = nullptr;
    workspace_ = nullptr;
    handle_ = nullptr;
  }

  int64_t out_, in_, tokens_;
  cudaStream_t stream_;
  std::vector<__nv_bfloat16> wb_, xb_;  // the bf16-rounded inputs, kept for validation
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::vector<__nv_bfloat16*> weights_;
  __nv_bfloat16 *x_ = nullptr, *y_ = nullptr;
};

}  // namespace bimamba
