// Linear<Backend>: a dense layer y = x W^T (+ b) whose parameters live in a ParamStore.
//   "<prefix>.weight" (out, in), "<prefix>.bias" (out) when bias.
// Two phases, like every module here: declare(store, ...) before store.allocate(), bind(store) after it.
#pragma once

#include <cstdint>
#include <string>

#include "../ops/linear.hpp"
#include "../train/param_store.hpp"

namespace bimamba {

template <class Backend>
class Linear {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t in, int64_t out, bool bias) {
    in_ = in, out_ = out;
    weight_id_ = store.declare(prefix + ".weight", {out, in});
    bias_id_ = bias ? store.declare(prefix + ".bias", {out}, ParamGroup::NoDecay) : -1;
  }
  void bind(ParamStore<Backend>& store) {
    weight_ = store.template param<2>(weight_id_);
    if (bias_id_ >= 0) bias_ = store.template param<1>(bias_id_);
  }

  // x (T, in) -> y (T, out).
  void forward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) const {
    linear(ctx, x, weight_, bias_, y);
  }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  TensorView<float, 2, Backend> weight() const { return weight_; }  // (out, in)
  TensorView<float, 1, Backend> bias() const { return bias_; }      // (out) or empty
  int weight_id() const { return weight_id_; }
  int bias_id() const { return bias_id_; }

 private:
  int64_t in_ = 0, out_ = 0;
  int weight_id_ = -1, bias_id_ = -1;
  TensorView<float, 2, Backend> weight_;
  TensorView<float, 1, Backend> bias_;
};

}  // namespace bimamba
