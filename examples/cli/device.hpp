// --device host|cuda: where a subcommand computes (logits, generate, perplexity, bench decode / gemv, train,
// distill). Each such command's body is a template over the backend (cmd_<name>.hpp); the host instantiation
// lives in cmd_<name>.cpp, the Cuda one in cuda_*.cu, compiled only in builds with CUDA.
//
//   add_device_option(args, what)   declares --device (default host)
//   wants_cuda(args)                false for host; for cuda first require_cuda_device(), which throws a one-line
//                                   error unless this bimamba has CUDA and a GPU is usable: before any file is
//                                   read or written. Any other value is a UsageError.
//   announce_gpu(what)              "<what> on GPU <i>, <name>" on stderr (builds with CUDA)
//   log_warnings_to_stderr(ctx, c)  the library's warnings as "<c>: warning: ..." lines on stderr
//   host_copy(t)                    t itself for a host tensor, a host copy of a device one
#pragma once

#include <bimamba/core/context.hpp>
#include <bimamba/tensor/copy.hpp>
#include <cstdio>
#include <string>
#include <string_view>

#include "args.hpp"

namespace bimamba::cli {

#ifdef BIMAMBA_CLI_WITH_CUDA
void require_cuda_device();                // cuda_device.cu
void announce_gpu(const std::string& what);  // "<what> on GPU 0, <name>" on stderr
#else
inline void require_cuda_device() { throw UsageError("--device cuda: this bimamba was built without CUDA"); }
#endif

inline void add_device_option(Args& args, const std::string& what) {
  args.option("device", "host|cuda", what + " (cuda: the first GPU, in builds with CUDA)", "host");
}

inline bool wants_cuda(const Args& args) {
  const std::string device = args.str("device");
  if (device != "host" && device != "cuda") throw UsageError("--device must be host or cuda, got '" + device + "'");
  if (device == "cuda") require_cuda_device();
  return device == "cuda";
}

template <class Backend>
void log_warnings_to_stderr(Context<Backend>& ctx, const std::string& command) {
  ctx.set_logger([command](LogLevel level, std::string_view message) {
    if (level == LogLevel::Warning)
      std::fprintf(stderr, "%s: warning: %.*s\n", command.c_str(), int(message.size()), message.data());
  });
}

template <class T, int Rank, class Backend>
decltype(auto) host_copy(const Tensor<T, Rank, Backend>& t) {
  if constexpr (is_host_v<Backend>) return (t);  // a reference: no copy
  else return to_host(t);
}

// The commands' bodies on the first GPU (cuda_inference.cu, cuda_bench.cu), called after wants_cuda(args)
// returned true; only in builds with CUDA, where a call site reads
//   if (wants_cuda(args)) {  // never true in builds without CUDA: it throws there
//   #ifdef BIMAMBA_CLI_WITH_CUDA
//     return run_logits_cuda(args);
//   #endif
//   }
#ifdef BIMAMBA_CLI_WITH_CUDA
int run_logits_cuda(const Args& args);
int run_generate_cuda(const Args& args);
int run_perplexity_cuda(const Args& args);
int run_bench_decode_cuda(const Args& args);
int run_bench_gemv_cuda(const Args& args);
#endif

}  // namespace bimamba::cli
