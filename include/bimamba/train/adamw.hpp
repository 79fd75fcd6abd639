// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW) over a ParamStore's flat buffers, one pass per step.
//
// For step t = 1, 2, ... with learning rate lr, gradient g, state m, v (zero at t = 0):
//   p <- p * (1 - lr * wd)              decoupled weight decay, only for ParamGroup::Decay parameters
//   m <- b1 m + (1 - b1) g
//   v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Elementwise in float; the bias corrections in double. Groups are set when parameters are declared
// (ParamStore::declare(..., ParamGroup::NoDecay) for norms, biases, A_log, D, dt_bias).
//
// Before updating, step() checks the gradients for NaN / Inf (one read pass). The config's policy says what
// follows: Throw -> NumericError naming the step and the first offending parameter; SkipStep -> nothing is
// changed (not even t), a warning goes to ctx.log, and step() returns false.
//
// clip_and_step(ctx, lr, max_norm) is clip_grad_norm(ctx, store, max_norm) followed by step(ctx, lr) in two
// passes over the gradients instead of four (sum of squares, scale, non-finite search, update): the sum of
// squares is also the non-finite check (a float's square cannot overflow a double, so the sum is finite iff
// every gradient is), and the update reads g * max_norm / (n + 1e-6) instead of writing the scaled gradients
// back. Same parameters and state bit for bit (g * 1 == g; the scaled value is the same float product); the
// difference is that the gradient buffer stays unscaled.
//
// The state (m, v: flat buffers in the store's layout; t) is exposed for checkpoints (train/checkpoint.hpp).
//
//   AdamW<Host> opt(store, {.lr = 3e-4f, .betas = {0.9f, 0.95f}, .weight_decay = 0.1f});
//   opt.step(ctx, schedule(opt.step_count()));                       // or, with clipping:
//   const ClippedStep s = opt.clip_and_step(ctx, schedule(opt.step_count()), 1.0);  // s.grad_norm, s.stepped
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/context.hpp"
#include "../core/log.hpp"
#include "../tensor/tensor.hpp"
#include "grad_utils.hpp"
#include "host/adamw.hpp"
#if defined(__CUDACC__) && __has_include("cuda/adamw.cuh")
#include "cuda/adamw.cuh"
#endif
#include "param_store.hpp"

namespace bimamba {

struct AdamWConfig {
  struct Betas {
    float beta1 = 0.9f;
    float beta2 = 0.999f;
  };
  float lr = 1e-3f;  // used by step(ctx) without an explicit learning rate
  Betas betas{};
  float eps = 1e-8f;
  float weight_decay = 0.01f;
  NonFinitePolicy non_finite = NonFinitePolicy::Throw;
};

// What AdamW::clip_and_step did: the gradient norm before clipping and whether the update ran.
struct ClippedStep {
  double grad_norm = 0;
  bool stepped = false;
};

template <class Backend>
class AdamW {
 public:
  AdamW(ParamStore<Backend>& store, const AdamWConfig& config) : store_(&store), config_(config) {
    BIMAMBA_CHECK(store.allocated(), "AdamW: the ParamStore must be allocated first");
    BIMAMBA_CHECK(
        config.betas.beta1 >= 0 && config.betas.beta1 < 1 && config.betas.beta2 >= 0 && config.betas.beta2 < 1,
        "AdamW: betas must lie in [0, 1), got (", config.betas.beta1, ", ", config.betas.beta2, ")");
    BIMAMBA_CHECK(config.eps > 0 && config.weight_decay >= 0, "AdamW: need eps > 0 (", config.eps,
                  ") and weight_decay >= 0 (", config.weight_decay, ")");
    m_ = Tensor<float, 1, Backend>({store.flat_size()});
    v_ = Tensor<float, 1, Backend>({store.flat_size()});
    build_segments();
  }

  // One update with learning rate lr. Returns false when the step was skipped (SkipStep policy).
  bool step(Context<Backend>& ctx, float lr) {
    check_lr(lr);
    if (!accept_gradients(ctx)) return false;
    update(ctx, lr, 1.0f);
    return true;
  }
  bool step(Context<Backend>& ctx) { return step(ctx, config_.lr); }

  // clip_grad_norm(ctx, store, max_norm) then step(ctx, lr), in two passes over the gradients (top comment);
  // the gradient buffer is left unscaled.
  ClippedStep clip_and_step(Context<Backend>& ctx, float lr, double max_norm) {
    check_lr(lr);
    BIMAMBA_CHECK(max_norm > 0, "AdamW::clip_and_step: max_norm must be > 0, got ", max_norm);
    ClippedStep result;
    result.grad_norm = grad_norm(ctx, *store_);
    if (!std::isfinite(result.grad_norm) && !accept_gradients(ctx)) return result;
    const double norm = result.grad_norm;
    update(ctx, lr, norm > max_norm ? float(max_norm / (norm + 1e-6)) : 1.0f);
    result.stepped = true;
    return result;
  }

  const AdamWConfig& config() const { return config_; }
  // Completed updates (t of the bias correction).
  int64_t step_count() const { return t_; }
  // Steps skipped for non-finite gradients.
  int64_t skipped_steps() const { return skipped_; }

  // State, for checkpoints: m and v in the store's flat layout.
  TensorView<float, 1, Backend> m() { return m_.view(); }
  TensorView<float, 1, Backend> v() { return v_.view(); }
  TensorView<const float, 1, Backend> m() const { return m_.cview(); }
  TensorView<const float, 1, Backend> v() const { return v_.cview(); }
  void set_step_count(int64_t t, int64_t skipped = 0) {
    BIMAMBA_CHECK(t >= 0 && skipped >= 0, "AdamW: step counts must be >= 0, got ", t, " and ", skipped);
    t_ = t;
    skipped_ = skipped;
  }

 private:
  static void check_lr(float lr) {
    BIMAMBA_CHECK(lr >= 0 && std::isfinite(lr), "AdamW: learning rate must be finite and >= 0, got ", lr);
  }

  // The non-finite check and its policy: true when the gradients are finite.
  bool accept_gradients(Context<Backend>& ctx) {
    auto bad = find_non_finite(ctx, *store_, store_->grads());
    if (!bad) return true;
    const std::string message = detail::concat("AdamW step ", t_ + 1, ": the gradient of ", detail::describe(*bad));
    if (config_.non_finite == NonFinitePolicy::Throw) throw NumericError(message);
    ctx.log(LogLevel::Warning, message + "; step skipped");
    ++skipped_;
    return false;
  }

  void update(Context<Backend>& ctx, float lr, float grad_scale) {
    ++t_;
    detail::AdamWStepConstants k;
    k.lr = lr;
    k.decay_factor = float(1.0 - double(lr) * double(config_.weight_decay));
    k.beta1 = config_.betas.beta1;
    k.beta2 = config_.betas.beta2;
    k.eps = config_.eps;
    k.step_size = float(double(lr) / (1.0 - std::pow(double(k.beta1), double(t_))));
    k.inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(k.beta2), double(t_))));
    k.grad_scale = grad_scale;
    detail::adamw_impl(ctx, store_->params(), store_->grads(), m_.view(), v_.view(), segments_, k);
  }

  // Runs of parameters with the same group, merged, covering the whole flat buffer (padding included:
  // it holds zeros in p, g, m, v and stays zero under the update).
  void build_segments() {
    for (const auto& e : store_->entries()) {
      const bool decay = e.group == ParamGroup::Decay;
      if (!segments_.empty() && segments_.back().decay == decay) continue;
      if (!segments_.empty()) segments_.back().end = e.offset;
      segments_.push_back({e.offset, 0, decay});
    }
    if (!segments_.empty()) segments_.back().end = store_->flat_size();
  }

  ParamStore<Backend>* store_;
  AdamWConfig config_;
  Tensor<float, 1, Backend> m_, v_;
  std::vector<detail::DecaySegment> segments_;
  int64_t t_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace bimamba
