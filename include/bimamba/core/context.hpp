// Context<Backend>: what every op needs besides its tensors. Passed first to every op and module call.
//   Context<Host>: the number of threads (OpenMP when compiled with it, else one), a workspace arena and
//                  a log callback.
//   Context<Cuda>: a stream, a cuBLAS handle, a device workspace arena, the GEMM precision and a log
//                  callback (core/cuda_runtime.hpp).
// A Context is not thread-safe: use one per thread of the caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "backend.hpp"
#include "error.hpp"
#include "log.hpp"
#include "workspace.hpp"

namespace bimamba {

// How the Cuda backend's dense GEMMs compute (the projections in prefill and training, their backward, the
// head); everything else (the SSM scan and state, norms, reductions, the optimizer) stays fp32 / double, and the
// Host backend always computes in fp32.
//   Fp32  fp32 FMA, no tensor cores: the default, what the device-vs-host tests hold to 1e-5 / 1e-4
//   Tf32  tensor cores on fp32 operands rounded to 10-bit mantissas, fp32 accumulation
//   Bf16  bf16 compute copies of both operands (the fp32 master weights and activations are kept), bf16 tensor
//         cores, fp32 accumulation and output: mixed precision training
enum class GemmPrecision { Fp32, Tf32, Bf16 };

inline const char* to_string(GemmPrecision p) {
  return p == GemmPrecision::Bf16 ? "bf16" : p == GemmPrecision::Tf32 ? "tf32" : "fp32";
}

// "fp32", "tf32" or "bf16"; anything else throws Error naming the value.
inline GemmPrecision gemm_precision_from_string(std::string_view name) {
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Tf32, GemmPrecision::Bf16})
    if (name == to_string(p)) return p;
  throw Error(detail::concat("GEMM precision must be fp32, tf32 or bf16, got '", name, "'"));
}

template <class Backend>
class Context;

template <>
class Context<Host> {
 public:
  // threads <= 0 means all hardware threads OpenMP reports (1 without OpenMP).
  explicit Context(int threads = 0) { set_threads(threads); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int threads() const { return threads_; }
  void set_threads(int threads) {
#if defined(_OPENMP)
    threads_ = threads > 0 ? threads : omp_get_max_threads();
#else
    threads_ = 1;
    (void)threads;
#endif
  }

  Workspace<Host>& workspace() { return workspace_; }

  void set_logger(LogCallback callback) { logger_ = std::move(callback); }
  void log(LogLevel level, std::string_view message) const {
    if (logger_) logger_(level, message);
  }

  // Calls body(begin, end) on disjoint contiguous ranges covering [0, n), one per thread, in parallel
  // when more than one thread is configured and n >= min_per_thread * 2. body must not throw.
  template <class Body>
  void parallel_for(int64_t n, Body&& body, int64_t min_per_thread = 1) const {
    const int64_t useful = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
    const int workers = int(std::min<int64_t>(threads_, useful));
    if (workers <= 1 || n <= 1) {
      if (n > 0) body(int64_t(0), n);
      return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(workers)
    {
      const int64_t t = omp_get_thread_num();
      const int64_t nt = omp_get_num_threads();
      const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
      if (begin < end) body(begin, end);
    }
#else
    body(int64_t(0), n);
#endif
  }

 private:
  int threads_ = 1;
  Workspace<Host> workspace_;
  LogCallback logger_;
};

}  // namespace bimamba
