// The Cuda backend's runtime pieces usable from plain C++ (linked with bimamba::cuda): error checks,
// device memory, and Context<Cuda> (device, stream, cuBLAS handle, workspace, log callback, range timer).
// Kernels live in ops/cuda/*.cuh and need a CUDA translation unit.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <string_view>
#include <utility>

#include "backend.hpp"
#include "context.hpp"
#include "error.hpp"
#include "memory.hpp"

namespace bimamba {

class RangeTimer;  // core/range_timer.hpp

// The CUDA runtime or driver reported a failure.
class CudaError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] inline void throw_cuda_failure(cudaError_t status, const char* expression, const char* file,
                                            int line) {
  throw CudaError(concat("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ",
                         expression, " at ", file, ":", line));
}
[[noreturn]] inline void throw_cublas_failure(cublasStatus_t status, const char* expression, const char* file,
                                              int line) {
  throw CudaError(concat("cuBLAS error ", cublasGetStatusName(status), " in ", expression, " at ", file, ":",
                         line));
}
}  // namespace detail
}  // namespace bimamba

// Throws bimamba::CudaError naming the failing call when a CUDA runtime call does not return cudaSuccess.
#define BIMAMBA_CUDA_CHECK(expression)                                                      \
  do {                                                                                      \
    const cudaError_t bimamba_status_ = (expression);                                       \
    if (bimamba_status_ != cudaSuccess)                                                     \
      ::bimamba::detail::throw_cuda_failure(bimamba_status_, #expression, __FILE__, __LINE__); \
  } while (0)

#define BIMAMBA_CUBLAS_CHECK(expression)                                                        \
  do {                                                                                          \
    const cublasStatus_t bimamba_status_ = (expression);                                        \
    if (bimamba_status_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::bimamba::detail::throw_cublas_failure(bimamba_status_, #expression, __FILE__, __LINE__); \
  } while (0)

namespace bimamba {

// True when a CUDA device can be used by this process (false on machines without a GPU or driver).
inline bool cuda_device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return count > 0;
}

namespace detail {
// Whether device allocations go through the device's default stream-ordered memory pool (CUDA 11.2+, every GPU
// of sm_60 and later on Linux), decided once per process from the device current at the first allocation. The
// first use of a device's pool raises its release threshold to "never", so freed blocks stay cached for later
// allocations of this process instead of going back to the driver at the next synchronization.
inline bool device_memory_pooled() {
  static const bool pooled = [] {
    int device = 0, supported = 0;
    return cudaGetDevice(&device) == cudaSuccess &&
           cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && supported;
  }();
  return pooled;
}

inline void retain_freed_blocks_in_pool() {
  static std::atomic<unsigned long long> configured{0};  // bit d: device d's pool done (beyond 63: every call)
  int device = 0;
  BIMAMBA_CUDA_CHECK(cudaGetDevice(&device));
  const unsigned long long bit = device < 64 ? 1ull << device : 0;
  if (bit & configured.load(std::memory_order_relaxed)) return;
  cudaMemPool_t pool;
  BIMAMBA_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  unsigned long long never = ~0ull;
  BIMAMBA_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &never));
  configured.fetch_or(bit, std::memory_order_relaxed);
}
}  // namespace detail

// Device memory comes from the current device's stream-ordered pool (detail::device_memory_pooled), allocated
// and freed in the legacy default stream: a free waits (on the device, not the host) for the work already
// queued on every blocking stream, and a later allocation that reuses the block is ordered after the free, so
// a tensor may be destroyed while kernels that read it are still queued. This is what makes a training step's
// hundreds of activation tensors cheap: cudaFree synchronizes the whole device and the host with it. Streams
// given to Context<Cuda> must therefore be blocking streams (Context checks). Without pools: cudaMalloc / cudaFree.
template <>
struct MemoryOps<Cuda> {
  static void* allocate(size_t bytes) {
    void* p = nullptr;
    if (detail::device_memory_pooled()) {
      detail::retain_freed_blocks_in_pool();
      BIMAMBA_CUDA_CHECK(cudaMallocAsync(&p, bytes == 0 ? kAlignment : bytes, cudaStreamLegacy));
    } else {
      BIMAMBA_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? kAlignment : bytes));
    }
    return p;
  }
  static void deallocate(void* p) {  // never throws: called from destructors
    if (!p) return;
    if (detail::device_memory_pooled()) (void)cudaFreeAsync(p, cudaStreamLegacy);
    else (void)cudaFree(p);
  }
  static void fill_zero(void* p, size_t bytes) {
    if (bytes) BIMAMBA_CUDA_CHECK(cudaMemset(p, 0, bytes));
  }
  static void copy_to_host(void* host_dst, const void* src, size_t bytes) {
    if (bytes) BIMAMBA_CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
  }
  static void copy_from_host(void* dst, const void* host_src, size_t bytes) {
    if (bytes) BIMAMBA_CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
  }
  static void copy_within(void* dst, const void* src, size_t bytes) {
    if (bytes) BIMAMBA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  }
  // `rows` rows of `width` bytes, at pitches of dst_pitch / src_pitch bytes; either side on the host or the
  // device (unified addressing tells which).
  static void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
    if (width && rows) BIMAMBA_CUDA_CHECK(cudaMemcpy2D(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDefault));
  }
};

template <>
class Context<Cuda> {
 public:
  // Uses the given stream (the default stream when null) on the current device.
  // The stream must be blocking (not cudaStreamNonBlocking): device memory is freed in stream order on the legacy
  // default stream (MemoryOps<Cuda>), which orders itself only after blocking streams' work.
  explicit Context(cudaStream_t stream = nullptr) : stream_(stream) {
    BIMAMBA_CUDA_CHECK(cudaGetDevice(&device_));
    unsigned flags = 0;
    if (stream) BIMAMBA_CUDA_CHECK(cudaStreamGetFlags(stream, &flags));
    BIMAMBA_CHECK(!(flags & cudaStreamNonBlocking),
                  "Context<Cuda>: the stream is non-blocking (cudaStreamNonBlocking); give a blocking stream "
                  "(cudaStreamCreate) or the default stream, since freed device memory is reused in the legacy "
                  "default stream's order");
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() {
    if (cublas_) cublasDestroy(cublas_);
    if (counters_) (void)cudaFree(counters_);
  }

  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }

  // The cuBLAS handle bound to this context's stream, created on first use.
  cublasHandle_t cublas() {
    if (!cublas_) {
      BIMAMBA_CUBLAS_CHECK(cublasCreate(&cublas_));
      BIMAMBA_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    }
    return cublas_;
  }

  Workspace<Cuda>& workspace() { return workspace_; }

  // The precision of the dense GEMMs run with this context (core/context.hpp); Fp32 unless set.
  GemmPrecision gemm_precision() const { return gemm_precision_; }
  void set_gemm_precision(GemmPrecision p) { gemm_precision_ = p; }

  // At least n zero-initialised device words, used as arrival counters by kernels whose last block finishes
  // the work of the others (split-K fix-ups); every such kernel returns the words it used to zero before it
  // ends. Growing synchronizes the device, so call it once outside graph capture with the largest n.
  unsigned* counters(size_t n) {
    if (n > counter_words_) {
      if (counters_) BIMAMBA_CUDA_CHECK(cudaFree(counters_));
      counters_ = nullptr;
      counter_words_ = 0;
      void* words = nullptr;
      BIMAMBA_CUDA_CHECK(cudaMalloc(&words, n * sizeof(unsigned)));
      counters_ = static_cast<unsigned*>(words);
      BIMAMBA_CUDA_CHECK(cudaMemset(counters_, 0, n * sizeof(unsigned)));
      BIMAMBA_CUDA_CHECK(cudaDeviceSynchronize());  // zeroed before any stream may use them
      counter_words_ = n;
    }
    return counters_;
  }

  void synchronize() const { BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  // Device time per ProfileRange (core/range_timer.hpp) while set; null (the default) records nothing. The
  // timer must outlive its use here.
  RangeTimer* range_timer() const { return range_timer_; }
  void set_range_timer(RangeTimer* timer) { range_timer_ = timer; }

  void set_logger(LogCallback callback) { logger_ = std::move(callback); }
  void log(LogLevel level, std::string_view message) const {
    if (logger_) logger_(level, message);
  }

 private:
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
  GemmPrecision gemm_precision_ = GemmPrecision::Fp32;
  cublasHandle_t cublas_ = nullptr;
  Workspace<Cuda> workspace_;
  unsigned* counters_ = nullptr;
  size_t counter_words_ = 0;
  RangeTimer* range_timer_ = nullptr;
  LogCallback logger_;
};

}  // namespace bimamba
