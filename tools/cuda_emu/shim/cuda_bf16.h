// CUDA CPU emulator: stands in for the toolkit's <cuda_bf16.h> (everything is in bimamba_emu.hpp).
#pragma once
#include "bimamba_emu.hpp"
