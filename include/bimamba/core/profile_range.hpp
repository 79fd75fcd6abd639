// Named ranges for profilers. ProfileRange<Backend> range(ctx, "ssd_scan") marks the enclosed host code, and with
// it the device work it launches, as one range. Ranges nest: the training code marks each op of a block inside
// "forward" / "backward" ranges of the caller.
//   Host: empty (nothing to attribute on the device).
//   Cuda: an NVTX range (nvtxRangePushA / nvtxRangePop, NVTX v3, header-only in the CUDA toolkit) for NVIDIA
//         Nsight Systems / Compute (`nsys`, `ncu --nvtx --nvtx-include "backward/ssd_scan/"`); with no profiler
//         attached each is a call through NVTX's uninitialized hook. And, while the context has a RangeTimer
//         (core/range_timer.hpp), a CUDA event on the context's stream at each end: device time per range
//         without a profiler.
// The Cuda specialization is defined only in translation units compiled as CUDA, the only ones that can name
// Context<Cuda> work, so every definition a program sees is the same.
#pragma once

#include "backend.hpp"
#include "context.hpp"
#if defined(__CUDACC__)
#include "range_timer.hpp"
#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define BIMAMBA_PROFILE_RANGES_NVTX 1
#endif
#endif

namespace bimamba {

template <class Backend>
class ProfileRange {
 public:
  ProfileRange(Context<Backend>&, const char*) {}
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};

#if defined(__CUDACC__)
template <>
class ProfileRange<Cuda> {
 public:
  ProfileRange(Context<Cuda>& ctx, const char* name) : timer_(ctx.range_timer()), stream_(ctx.stream()) {
#ifdef BIMAMBA_PROFILE_RANGES_NVTX
    nvtxRangePushA(name);
#endif
    if (timer_) timer_->push(name, stream_);
  }
  ~ProfileRange() {
    if (timer_) timer_->pop(stream_);  // noexcept
#ifdef BIMAMBA_PROFILE_RANGES_NVTX
    nvtxRangePop();
#endif
  }
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;

 private:
  RangeTimer* timer_;
  cudaStream_t stream_;
};
#endif

}  // namespace bimamba
