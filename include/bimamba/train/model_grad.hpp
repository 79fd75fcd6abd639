// Training forward and backward of a LanguageModel (model/language_model.hpp): Mamba-2, Bi-Mamba (latent
// FBI-Linear projections) and Mamba-1, from fresh states, no padding mask.
//
//   TrainingPass<Host> pass = training_forward(ctx, model, ids);        // ids (B, L); keeps activations
//   ... training_forward(ctx, model, ids, Recompute::PerBlock)          // keeps only each block's inputs
//   double loss = distill_loss(ctx, pass.logits(), teacher, pass.dlogits());   // any loss writing dlogits
//   training_backward(ctx, model, pass, GradientMode::Overwrite);       // model.params().grads() = dL/dparams
//
// The math, forward then backward (h_i the residual stream entering layer i, n_i = RMSNorm_i(h_i)):
//   h_0 = E[ids];  h_{i+1} = h_i + Mixer_i(n_i);  logits = RMSNorm_f(h_n) W_head^T   (W_head = E when tied)
//   dn_f = dlogits W_head,  dW_head += dlogits^T n_f      (tied: added to dE)
//   dh_n = RMSNorm_f'(dn_f);  for i = n-1 .. 0:  dh_i = dh_{i+1} + RMSNorm_i'(Mixer_i'(dh_{i+1}))
//   dE += scatter_add(ids, dh_0)
// GradientMode: Overwrite zeroes the store's gradients first; Accumulate adds this batch's gradients to
// them (micro-batches: Accumulate twice == 2x Overwrite). dlogits is read, not modified.
// Memory kept (floats): per layer h_i and n_i (2 T D) plus the mixer's Mamba2Saved / MambaSaved (see
// train/mamba2_mixer_grad.hpp, train/mamba_mixer_grad.hpp), then h_n, n_f (2 T D), logits and dlogits
// (2 T V). Backward scratch: 3 T D plus one mixer's gradients. A packed model (pack()) throws InvalidArgument.
//
// Recompute::PerBlock (activation checkpointing per block, for long sequences): the forward keeps h_i and n_i
// only (2 T D floats per layer instead of ~12 T D with a Mamba-2 mixer's saved activations: in_proj output
// T R, conv output T C, dt, y and the gated norm's output T E each); training_backward reruns each mixer's
// training forward from the kept n_i right before that mixer's backward, one layer at a time. The kernels are
// deterministic, so the gradients are the same bits as without recomputation; the cost is one more mixer
// forward per layer.
// Profiler ranges (core/profile_range.hpp): head, norm, recompute and embedding here, a Mamba-2 mixer's ops in
// train/mamba2_mixer_grad.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/profile_range.hpp"
#include "../model/language_model.hpp"
#include "../ops/embedding_backward.hpp"
#include "../ops/rms_norm_backward.hpp"
#include "../tensor/copy.hpp"
#include "mamba2_mixer_grad.hpp"
#include "mamba_mixer_grad.hpp"

namespace bimamba {

enum class Recompute { None, PerBlock };

// The head's weight (V, D): the embedding when tied, else lm_head.weight.
template <class Backend>
TensorView<float, 2, Backend> head_weight(LanguageModel<Backend>& model) {
  if (model.config().tie_embeddings) return model.embedding().weight();
  return model.params().template param<2>(model.params().id("lm_head.weight"));
}

template <class Backend>
class TrainingPass {
 public:
  TensorView<float, 3, Backend> logits() { return logits_.view(); }     // (B, L, V)
  TensorView<float, 3, Backend> dlogits() { return dlogits_.view(); }   // (B, L, V), zero until a loss fills it
  TensorView<const int32_t, 2, Backend> ids() const { return ids_.cview(); }

 private:
  template <class B>
  friend TrainingPass<B> training_forward(Context<B>&, LanguageModel<B>&, View<const int32_t, 2, B>, Recompute);
  template <class B>
  friend void training_backward(Context<B>&, LanguageModel<B>&, TrainingPass<B>&, GradientMode);

  Tensor<int32_t, 2, Backend> ids_;                  // (B, L)
  std::vector<Tensor<float, 3, Backend>> h_, n_;     // n_layer + 1 each (B, L, D); the last pair feeds norm_f
  std::vector<Mamba2Saved<Backend>> mixers2_;        // n_layer (Mamba-2 / Bi-Mamba)
  std::vector<MambaSaved<Backend>> mixers1_;         // n_layer (Mamba-1)
  Tensor<float, 3, Backend> logits_, dlogits_;       // (B, L, V)
  Recompute recompute_ = Recompute::None;            // PerBlock: the mixers' saved activations are not kept
};

template <class Backend>
TrainingPass<Backend> training_forward(Context<Backend>& ctx, LanguageModel<Backend>& model,
                                       View<const int32_t, 2, Backend> ids, Recompute recompute = Recompute::None) {
  const ModelConfig& cfg = model.config();
  BIMAMBA_CHECK(!model.packed(), "training_forward: the model is packed; unpack() to train the latent weights");
  const int64_t B = ids.size(0), L = ids.size(1), T = B * L, D = cfg.d_model, V = cfg.vocab_size, n = cfg.n_layer;
  TrainingPass<Backend> p;
  p.recompute_ = recompute;
  p.ids_ = Tensor<int32_t, 2, Backend>({B, L});
  copy(ids, p.ids_.view());  // often a column range (a Batch's inputs()): contiguous rows at a pitch
  for (int64_t i = 0; i <= n; ++i) {
    p.h_.emplace_back(Extents<3>{B, L, D});
    p.n_.emplace_back(Extents<3>{B, L, D});
  }
  const bool mamba2 = cfg.architecture == Architecture::Mamba2;
  if (mamba2) p.mixers2_.resize(size_t(n));
  else p.mixers1_.resize(size_t(n));
  p.logits_ = Tensor<float, 3, Backend>({B, L, V});
  p.dlogits_ = Tensor<float, 3, Backend>({B, L, V});
  WorkspaceScope<Backend> scope(ctx.workspace());
  TensorView<float, 3, Backend> mixed(ctx.workspace().template take<float>(size_t(T * D)), {B, L, D});  // (B, L, D)
  model.embedding().forward(ctx, ids, p.h_[0].view());
  model.norm(0).forward(ctx, p.h_[0].view().template reshape<2>({T, D}), p.n_[0].view().template reshape<2>({T, D}));
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = size_t(i);
    if (mamba2) {
      mamba2_forward_train(ctx, model.mamba2_mixer(i), cfg, p.n_[k].cview(), mixed, p.mixers2_[k]);
      if (recompute == Recompute::PerBlock) p.mixers2_[k] = Mamba2Saved<Backend>{};  // freed: rebuilt by the backward
    } else {
      mamba_forward_train(ctx, model.mamba_mixer(i), cfg, p.n_[k].cview(), mixed, p.mixers1_[k]);
      if (recompute == Recompute::PerBlock) p.mixers1_[k] = MambaSaved<Backend>{};
    }
    ProfileRange<Backend> range(ctx, "norm");
    copy(p.h_[k].cview(), p.h_[k + 1].view());
    const RMSNorm<Backend>& next = i + 1 < n ? model.norm(i + 1) : model.norm_f();
    next.add_forward(ctx, p.h_[k + 1].view().template reshape<2>({T, D}), mixed.template reshape<2>({T, D}),
                     p.n_[k + 1].view().template reshape<2>({T, D}));
  }
  const auto nf = p.n_[size_t(n)].cview().template reshape<2>({T, D});
  auto logits = p.logits_.view().template reshape<2>({T, V});
  ProfileRange<Backend> range(ctx, "head");
  linear(ctx, nf, head_weight(model), {}, logits);
  return p;
}

template <class Backend>
void training_backward(Context<Backend>& ctx, LanguageModel<Backend>& model, TrainingPass<Backend>& p,
                       GradientMode mode) {
  const ModelConfig& cfg = model.config();
  const int64_t B = p.ids_.size(0), L = p.ids_.size(1), T = B * L, D = cfg.d_model, V = cfg.vocab_size,
                n = cfg.n_layer;
  const bool mamba2 = cfg.architecture == Architecture::Mamba2;
  BIMAMBA_CHECK(int64_t(mamba2 ? p.mixers2_.size() : p.mixers1_.size()) == n,
                "training_backward: the pass was not made by training_forward of this model");
  ParamStore<Backend>& store = model.params();
  if (mode == GradientMode::Overwrite) store.zero_grad();
  const auto acc = GradientMode::Accumulate;
  auto& ws = ctx.workspace();
  WorkspaceScope<Backend> scope(ws);
  const size_t TD = size_t(T * D);
  float* base = ws.template take<float>(3 * TD);
  TensorView<float, 2, Backend> dh(base, {T, D});            // (T, D) gradient of the residual stream
  TensorView<float, 2, Backend> dn(base + TD, {T, D});       // (T, D) gradient of a norm's output
  TensorView<float, 2, Backend> du(base + 2 * TD, {T, D});   // (T, D) gradient of a mixer's input
  MemoryOps<Backend>::fill_zero(base, 3 * TD * sizeof(float));

  const auto dlogits = p.dlogits_.cview().template reshape<2>({T, V});
  const auto nf = p.n_[size_t(n)].cview().template reshape<2>({T, D});
  const TensorView<float, 2, Backend> head_w = head_weight(model);
  {
    ProfileRange<Backend> range(ctx, "head");
    linear_backward(ctx, nf, head_w, dlogits, dn, grad_of(store, head_w), {}, acc);
  }
  {
    ProfileRange<Backend> range(ctx, "norm");
    const RMSNorm<Backend>& norm_f = model.norm_f();
    rms_norm_backward(ctx, p.h_[size_t(n)].cview().template reshape<2>({T, D}), norm_f.weight(), norm_f.eps(), dn,
                      dh, grad_of(store, norm_f.weight()), acc);
  }
  const bool rebuild = p.recompute_ == Recompute::PerBlock;
  for (int64_t i = n - 1; i >= 0; --i) {
    const size_t k = size_t(i);
    const auto dout = dh.template reshape<3>({B, L, D});
    if (mamba2) {
      Mamba2Saved<Backend> rebuilt;
      if (rebuild) {  // the mixer's forward again, from its kept input; its output is not needed
        ProfileRange<Backend> range(ctx, "recompute");
        WorkspaceScope<Backend> redo(ws);
        TensorView<float, 3, Backend> mixed(ws.template take<float>(TD), {B, L, D});
        mamba2_forward_train(ctx, model.mamba2_mixer(i), cfg, p.n_[k].cview(), mixed, rebuilt);
      }
      mamba2_backward(ctx, model.mamba2_mixer(i), cfg, store, p.n_[k].cview(), rebuild ? rebuilt : p.mixers2_[k], dout,
                      du.template reshape<3>({B, L, D}));
    } else {
      MambaSaved<Backend> rebuilt;
      if (rebuild) {
        ProfileRange<Backend> range(ctx, "recompute");
        WorkspaceScope<Backend> redo(ws);
        TensorView<float, 3, Backend> mixed(ws.template take<float>(TD), {B, L, D});
        mamba_forward_train(ctx, model.mamba_mixer(i), cfg, p.n_[k].cview(), mixed, rebuilt);
      }
      mamba_backward(ctx, model.mamba_mixer(i), cfg, store, p.n_[k].cview(), rebuild ? rebuilt : p.mixers1_[k], dout,
                     du.template reshape<3>({B, L, D}));
    }
    ProfileRange<Backend> range(ctx, "norm");
    const RMSNorm<Backend>& norm = model.norm(i);
    rms_norm_backward(ctx, p.h_[k].cview().template reshape<2>({T, D}), norm.weight(), norm.eps(), du, dh,
                      grad_of(store, norm.weight()), acc);
  }
  ProfileRange<Backend> range(ctx, "embedding");
  embedding_backward(ctx, p.ids_.cview(), dh.template reshape<3>({B, L, D}), grad_of(store, model.embedding().weight()),
                     acc);
}

}  // namespace bimamba
