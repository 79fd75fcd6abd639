// RMSNorm<Backend> and GatedRMSNorm<Backend>: the norms of the blocks, weights in a ParamStore.
//   RMSNorm:      "<prefix>.weight" (D);  y = x / sqrt(mean x^2 + eps) * w   (ops/rms_norm.hpp)
//   GatedRMSNorm: "<prefix>.weight" (E);  out = groupnorm(y * silu(z)) * w, groups of E / G  (ops/gated_rms_norm.hpp)
#pragma once

#include <cstdint>
#include <string>

#include "../ops/gated_rms_norm.hpp"
#include "../ops/rms_norm.hpp"
#include "../train/param_store.hpp"

namespace bimamba {

template <class Backend>
class RMSNorm {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t dim, float eps) {
    eps_ = eps;
    id_ = store.declare(prefix + ".weight", {dim}, ParamGroup::NoDecay);
  }
  void bind(ParamStore<Backend>& store) { weight_ = store.template param<1>(id_); }

  // x, y (T, D).
  void forward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) const {
    rms_norm(ctx, x, weight_, eps_, y);
  }
  // residual += x; y = norm(residual).
  void add_forward(Context<Backend>& ctx, View<float, 2, Backend> residual, View<const float, 2, Backend> x,
                   View<float, 2, Backend> y) const {
    add_rms_norm(ctx, residual, x, weight_, eps_, y);
  }

  float eps() const { return eps_; }
  TensorView<float, 1, Backend> weight() const { return weight_; }
  int weight_id() const { return id_; }

 private:
  float eps_ = 1e-5f;
  int id_ = -1;
  TensorView<float, 1, Backend> weight_;
};

template <class Backend>
class GatedRMSNorm {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t dim, int64_t groups, float eps) {
    groups_ = groups, eps_ = eps;
    id_ = store.declare(prefix + ".weight", {dim}, ParamGroup::NoDecay);
  }
  void bind(ParamStore<Backend>& store) { weight_ = store.template param<1>(id_); }

  // y, z, out (T, E); out may alias y.
  void forward(Context<Backend>& ctx, View<const float, 2, Backend> y, View<const float, 2, Backend> z,
               View<float, 2, Backend> out) const {
    gated_rms_norm(ctx, y, z, weight_, groups_, eps_, out);
  }

  int64_t groups() const { return groups_; }
  float eps() const { return eps_; }
  TensorView<float, 1, Backend> weight() const { return weight_; }
  int weight_id() const { return id_; }

 private:
  int64_t groups_ = 1;
  float eps_ = 1e-5f;
  int id_ = -1;
  TensorView<float, 1, Backend> weight_;
};

}  // namespace bimamba
