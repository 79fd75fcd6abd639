// CUDA CPU emulator: stands in for the toolkit's <cuda_runtime_api.h> (everything is in bimamba_emu.hpp).
#pragma once
#include "bimamba_emu.hpp"
