// Timing device work against the device's limits, as the Cuda benchmarks and `bimamba bench --device cuda` do.
// A translation unit that includes this is compiled as CUDA or links the CUDA runtime.
//
//   EventTimer timer(stream);
//   timer.start(); ...enqueue work...; double ms = timer.stop_ms();   // GPU time between two events (syncs)
//
//   CapturedCalls calls(stream, n, [&](int i) { ...enqueue call i... });   // captured once into a CUDA graph
//   double us = 1e3 * calls.replay_ms() / n;                                // time per call of one replay
//
//   double gbps = device_copy_gbps(stream);  // cudaMemcpy device to device of 2 x 512 MiB buffers:
//                                            // (read + write bytes) / s of the best of `passes` copies
//   int64_t used = device_bytes_in_use();     // cudaMemGetInfo's total - free: the whole device, every process
//   int64_t peak = device_pool_peak_bytes();  // this process's pool high-water mark (reset_device_pool_peak())
//
// Contracts: the stream must be a created stream (the legacy default stream cannot be captured); `body` must
// not allocate or synchronize (it runs under stream capture); the captured calls keep the addresses they
// were given, so what they touch must outlive the CapturedCalls. Rotating inputs beyond the L2 cache (weight
// copies, one per call) is the caller's job: CapturedCalls replays exactly what was captured.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../core/cuda_runtime.hpp"

namespace bimamba {

class EventTimer {
 public:
  explicit EventTimer(cudaStream_t stream) : stream_(stream) {
    BIMAMBA_CUDA_CHECK(cudaEventCreate(&start_));
    BIMAMBA_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  ~EventTimer() {
    (void)cudaEventDestroy(start_);
    (void)cudaEventDestroy(stop_);
  }

  void start() { BIMAMBA_CUDA_CHECK(cudaEventRecord(start_, stream_)); }
  // Milliseconds of GPU time since start(); waits for the work in between to finish.
  double stop_ms() {
    BIMAMBA_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    BIMAMBA_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return double(ms);
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

class CapturedCalls {
 public:
  template <class Body>
  CapturedCalls(cudaStream_t stream, int calls, Body&& body) : stream_(stream), timer_(stream) {
    BIMAMBA_CHECK(stream != nullptr, "CapturedCalls: needs a created stream (the legacy default stream cannot be "
                                     "captured)");
    BIMAMBA_CHECK(calls > 0, "CapturedCalls: ", calls, " calls");
    BIMAMBA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      for (int i = 0; i < calls; ++i) body(i);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      (void)cudaStreamEndCapture(stream, &broken);
      if (broken) (void)cudaGraphDestroy(broken);
      throw;
    }
    BIMAMBA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    BIMAMBA_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
    BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));  // warm-up replay
    BIMAMBA_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  CapturedCalls(const CapturedCalls&) = delete;
  CapturedCalls& operator=(const CapturedCalls&) = delete;
  ~CapturedCalls() {
    if (exec_) (void)cudaGraphExecDestroy(exec_);
    if (graph_) (void)cudaGraphDestroy(graph_);
  }

  // Milliseconds of one replay of all the captured calls.
  double replay_ms() {
    timer_.start();
    BIMAMBA_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    return timer_.stop_ms();
  }

 private:
  cudaStream_t stream_;
  EventTimer timer_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

inline double device_copy_gbps(cudaStream_t stream, int passes = 5, size_t bytes = size_t(512) << 20) {
  void *a = nullptr, *b = nullptr;
  BIMAMBA_CUDA_CHECK(cudaMalloc(&a, bytes));
  const cudaError_t second = cudaMalloc(&b, bytes);
  if (second != cudaSuccess) (void)cudaFree(a);
  BIMAMBA_CUDA_CHECK(second);
  double best = 0;
  try {
    EventTimer timer(stream);
    BIMAMBA_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, stream));
    BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));  // warm-up
    for (int p = 0; p < passes; ++p) {
      timer.start();
      BIMAMBA_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
      best = std::max(best, 2.0 * double(bytes) / (timer.stop_ms() * 1e-3) / 1e9);
    }
  } catch (...) {
    (void)cudaFree(a);
    (void)cudaFree(b);
    throw;
  }
  BIMAMBA_CUDA_CHECK(cudaFree(a));
  BIMAMBA_CUDA_CHECK(cudaFree(b));
  return best;
}

inline int64_t device_bytes_in_use() {
  size_t free = 0, total = 0;
  BIMAMBA_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return int64_t(total - free);
}

namespace detail {
inline cudaMemPool_t current_device_pool() {
  int device = 0;
  cudaMemPool_t pool;
  BIMAMBA_CUDA_CHECK(cudaGetDevice(&device));
  BIMAMBA_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  return pool;
}
}  // namespace detail

// The high-water mark of the bytes allocated from the current device's default memory pool (where
// MemoryOps<Cuda> allocates) since the last reset_device_pool_peak(); 0 when the device has no pools.
inline int64_t device_pool_peak_bytes() {
  if (!detail::device_memory_pooled()) return 0;
  unsigned long long high = 0;
  BIMAMBA_CUDA_CHECK(cudaMemPoolGetAttribute(detail::current_device_pool(), cudaMemPoolAttrUsedMemHigh, &high));
  return int64_t(high);
}

// Starts a new high-water mark at the bytes in use now.
inline void reset_device_pool_peak() {
  if (!detail::device_memory_pooled()) return;
  unsigned long long zero = 0;
  BIMAMBA_CUDA_CHECK(cudaMemPoolSetAttribute(detail::current_device_pool(), cudaMemPoolAttrUsedMemHigh, &zero));
}

}  // namespace bimamba
