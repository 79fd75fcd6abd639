// GradientMode: whether a function that produces a gradient overwrites its output buffer or adds to it.
//   Overwrite:  g  = scale * dL/dx
//   Accumulate: g += scale * dL/dx      (gradient accumulation over micro-batches, mixed losses)
// GradientModes: the modes of one backward op's outputs, `inputs` for the gradients of its activation inputs
// (dx, dy, dz, ...) and `params` for those of its parameters (dw, dbias, ...). One GradientMode converts to both.
// A model's backward overwrites each activation gradient (one op writes it) and accumulates the parameter
// gradients: {Overwrite, Accumulate} needs neither zeroed activation buffers nor a read of their old values.
#pragma once

namespace bimamba {

enum class GradientMode { Overwrite, Accumulate };

struct GradientModes {
  GradientMode inputs, params;
  constexpr GradientModes(GradientMode both) : inputs(both), params(both) {}  // one mode for every output
  constexpr GradientModes(GradientMode inputs_mode, GradientMode params_mode)
      : inputs(inputs_mode), params(params_mode) {}
};

}  // namespace bimamba
