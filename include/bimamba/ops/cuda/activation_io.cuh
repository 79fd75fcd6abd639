// Activations stored as float or bfloat16 (core/dtype.hpp), read and written as float by the Cuda FBI-Linear
// kernels (binary_gemv.cuh, binary_linear.cuh), which are templates on the stored type Act:
//   load_activation(p)   one element as float; a bf16 value is exact in float (its bits are the upper half);
//   load_activation4(p)  four consecutive elements as a float4, in one load: p aligned to 4 * sizeof(Act)
//                        bytes (16 for float, 8 for bf16; see activation_quads_aligned);
//   store_activation(p, v)  v stored, rounded to nearest even for bf16 (the host's bfloat16(float)).
// For float every helper is the plain load or store it replaces.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../../core/dtype.hpp"

namespace bimamba::detail::gpu {

__device__ inline float load_activation(const float* p) { return *p; }
__device__ inline float load_activation(const bfloat16* p) { return float(*p); }

__device__ inline float4 load_activation4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ inline float4 load_activation4(const bfloat16* p) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);  // elements 0, 1 in u.x, 2, 3 in u.y (low half first)
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}

__device__ inline void store_activation(float* p, float v) { *p = v; }
__device__ inline void store_activation(bfloat16* p, float v) { *p = bfloat16(v); }

// Whether load_activation4 may read at p (the alignment of four elements).
template <class Act>
inline bool activation_quads_aligned(const Act* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(Act)) == 0;
}

}  // namespace bimamba::detail::gpu
