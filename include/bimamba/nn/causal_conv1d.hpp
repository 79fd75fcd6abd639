// CausalConv1d<Backend>: Mamba's depthwise causal conv with a fused SiLU, parameters in a ParamStore in the
// checkpoint's layout: "<prefix>.weight" (C, 1, K) (PyTorch's depthwise Conv1d), "<prefix>.bias" (C).
//   prefill: x (B, L, C) -> y (B, L, C); with a state (B, C, K) it starts from and leaves the rolling state
//   step:    x (B, C) -> y (B, C), state (B, C, K) updated in place.
// See ops/causal_conv1d.hpp for the math and the state layout.
#pragma once

#include <cstdint>
#include <string>

#include "../ops/causal_conv1d.hpp"
#include "../train/param_store.hpp"

namespace bimamba {

template <class Backend>
class CausalConv1d {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t channels, int64_t width, bool bias) {
    channels_ = channels, width_ = width;
    weight_id_ = store.declare(prefix + ".weight", {channels, 1, width}, ParamGroup::NoDecay);
    bias_id_ = bias ? store.declare(prefix + ".bias", {channels}, ParamGroup::NoDecay) : -1;
  }
  void bind(ParamStore<Backend>& store) {
    weight_ = store.template param<3>(weight_id_).template reshape<2>({channels_, width_});
    if (bias_id_ >= 0) bias_ = store.template param<1>(bias_id_);
  }

  void forward(Context<Backend>& ctx, View<const float, 3, Backend> x, View<float, 3, Backend> y,
               View<float, 3, Backend> state = {}) const {
    causal_conv1d(ctx, x, weight_, bias_, y, Activation::Silu, state, state);
  }
  void step(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 3, Backend> state,
            View<float, 2, Backend> y) const {
    causal_conv1d_step(ctx, x, weight_, bias_, state, y, Activation::Silu);
  }

  int64_t channels() const { return channels_; }
  int64_t width() const { return width_; }
  TensorView<float, 2, Backend> weight() const { return weight_; }  // (C, K) view of (C, 1, K)
  TensorView<float, 1, Backend> bias() const { return bias_; }
  int weight_id() const { return weight_id_; }
  int bias_id() const { return bias_id_; }

 private:
  int64_t channels_ = 0, width_ = 0;
  int weight_id_ = -1, bias_id_ = -1;
  TensorView<float, 2, Backend> weight_;
  TensorView<float, 1, Backend> bias_;
};

}  // namespace bimamba
