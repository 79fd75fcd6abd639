// GradientMode: whether a function that produces a gradient overwrites its output buffer or adds to it.
//   Overwrite:  g  = scale * dL/dx
//   Accumulate: g += scale * dL/dx      (gradient accumulation over micro-batches, mixed losses)
#pragma once

namespace bimamba {

enum class GradientMode { Overwrite, Accumulate };

}  // namespace bimamba
