// The Cuda backend's foundation: backends, Context<Cuda> (stream, cuBLAS handle, device workspace),
// device memory, tensors and cross-backend copies. Ops, layers and models are included individually;
// their device kernels are compiled in translation units compiled as CUDA.
#pragma once

#include "core.hpp"
#include "core/cuda_runtime.hpp"
