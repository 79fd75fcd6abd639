// Compiler and platform configuration shared by every header.
//
// BIMAMBA_HOST_DEVICE marks functions callable from host and device code when the translation unit
// is compiled by nvcc, and expands to nothing in plain C++. BIMAMBA_CUDA_COMPILER is defined exactly when
// device code can be written in the current translation unit.
#pragma once

#define BIMAMBA_VERSION_MAJOR 0
#define BIMAMBA_VERSION_MINOR 1
#define BIMAMBA_VERSION_PATCH 0

#if defined(__CUDACC__)
#define BIMAMBA_CUDA_COMPILER 1
#define BIMAMBA_HOST_DEVICE __host__ __device__
#define BIMAMBA_DEVICE __device__
#else
#define BIMAMBA_HOST_DEVICE
#define BIMAMBA_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BIMAMBA_RESTRICT __restrict__
#define BIMAMBA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define BIMAMBA_RESTRICT
#define BIMAMBA_ALWAYS_INLINE inline
#endif
