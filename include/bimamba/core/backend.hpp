// Backend tag types. Every op and module takes a Context<Backend>& first; the backend is part of every
// tensor's type, so host and device data cannot be mixed by accident.
//
// Host: Eigen + SIMD on the CPU. Cuda: CUDA kernels, Thrust/CUB and cuBLAS on an NVIDIA GPU. A translation
// unit that runs Cuda ops is compiled as CUDA; plain C++ can still own Cuda tensors (allocation and copies
// go through the CUDA runtime API) when linked against bimamba::cuda.
#pragma once

#include <type_traits>

namespace bimamba {

struct Host {
  static constexpr const char* name = "host";
};
struct Cuda {
  static constexpr const char* name = "cuda";
};

template <class Backend>
inline constexpr bool is_host_v = std::is_same_v<Backend, Host>;
template <class Backend>
inline constexpr bool is_cuda_v = std::is_same_v<Backend, Cuda>;

template <class Backend>
inline constexpr bool is_backend_v = is_host_v<Backend> || is_cuda_v<Backend>;

}  // namespace bimamba
