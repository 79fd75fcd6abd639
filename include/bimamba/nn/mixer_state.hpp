// MixerState<Backend>: views of one layer's decoding state for a batch of sequences (model/inference_state.hpp
// owns the memory). conv (B, C, K): the last K conv inputs, oldest first. ssm (B, S): the SSM state of each
// sequence, flattened: Mamba-2 S = H * P * N (viewed (B, H, P, N)), Mamba-1 S = E * N (viewed (B, E, N)).
// Empty views mean "no state": a prefill then starts from zeros and keeps nothing.
#pragma once

#include "../tensor/tensor_view.hpp"

namespace bimamba {

template <class Backend>
struct MixerState {
  TensorView<float, 3, Backend> conv;  // (B, C, K)
  TensorView<float, 2, Backend> ssm;   // (B, S)
};

}  // namespace bimamba
