// CUDA CPU emulator: stands in for the toolkit's <cublas_v2.h> (see emu_cublas.hpp).
#pragma once
#include "emu_cublas.hpp"
