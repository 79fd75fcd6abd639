// Named ranges for profilers. ProfileRange<Backend> range("ssd_scan") marks the enclosed host code, and with it
// the device work it launches, as one NVTX range for NVIDIA Nsight Systems / Compute (`nsys`, or
// `ncu --nvtx --print-summary per-nvtx`: kernel time per range, cuBLAS kernels included). Ranges nest: the
// training code marks each op of a block inside "forward" / "backward" ranges of the caller.
//   Host: empty (nothing to attribute on the device).
//   Cuda: nvtxRangePushA / nvtxRangePop (NVTX v3, header-only in the CUDA toolkit). With no profiler attached
//         each is a call through NVTX's uninitialized hook; nothing is recorded.
// The Cuda specialization is defined only in translation units compiled as CUDA, the only ones that can name
// Context<Cuda> work, so every definition a program sees is the same.
#pragma once

#include "backend.hpp"
#if defined(__CUDACC__) && __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define BIMAMBA_PROFILE_RANGES_NVTX 1
#endif

namespace bimamba {

template <class Backend>
class ProfileRange {
 public:
  explicit ProfileRange(const char*) {}
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};

#ifdef BIMAMBA_PROFILE_RANGES_NVTX
template <>
class ProfileRange<Cuda> {
 public:
  explicit ProfileRange(const char* name) { nvtxRangePushA(name); }
  ~ProfileRange() { nvtxRangePop(); }
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};
#endif

}  // namespace bimamba
