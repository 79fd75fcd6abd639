// The foundation alone: backends, Context, errors, dtypes, memory, workspace, tensors, bit-packed signs,
// copies and Eigen maps. bimamba.hpp adds everything else.
#pragma once

#include "core/backend.hpp"
#include "core/config.hpp"
#include "core/context.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/memory.hpp"
#include "core/workspace.hpp"
#include "tensor/bit_tensor.hpp"
#include "tensor/copy.hpp"
#include "tensor/eigen.hpp"
#include "tensor/tensor.hpp"
#include "tensor/tensor_view.hpp"
