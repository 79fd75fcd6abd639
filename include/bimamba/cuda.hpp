// Umbrella header for the Cuda backend: everything in bimamba.hpp plus the CUDA runtime pieces, and, in a
// translation unit compiled as CUDA, the device kernels.
#pragma once

#include "bimamba.hpp"
#include "core/cuda_runtime.hpp"
