// LanguageModel<Backend>: a Mamba-2, Mamba-1 or Bi-Mamba language model (ModelConfig says which).
//
//   h_0 = E[ids]                                       embedding (V, D)
//   h_{i+1} = h_i + Mixer_i(RMSNorm_i(h_i))            prenorm residual blocks, residual kept in float32
//   logits = RMSNorm_f(h_n) W_head^T                   W_head = E (tied) or lm_head.weight (V, D)
//
// Parameters (HF names: backbone.embeddings.weight, backbone.layers.<i>.norm.weight,
// backbone.layers.<i>.mixer.*, backbone.norm_f.weight, lm_head.weight when untied) live in one
// ParamStore<Backend>, zero-filled by the constructor; fill them with load_model (model/load.hpp),
// init_random (model/init.hpp) or through params(). A Bi-Mamba model runs its in_proj / out_proj on the
// latent weights until pack() switches them to sign bits (held outside the store).
//
// ModelOptions (constructor) choose what is allocated besides the full-precision parameters: the fp32
// latent weights of the FBI projections and the store's gradient buffer, both on by default (training).
// ModelOptions::inference() drops both: a Bi-Mamba model then holds only its sign bits (given by
// set_signs(source), e.g. model/load.hpp load_packed_model(ctx, path, ModelOptions::inference())), alpha /
// beta and the small fp32 tensors; unpack() and training throw. Logits are the same as the latent model's
// after pack() (the same bits and floats through the same kernels).
//
//   forward(ctx, ids (B, L)) -> logits (B, L, V)           prefill (chunked SSD scan / selective scan)
//   forward(ctx, ids (B, L), state) -> logits (B, L, V)    prefill that continues `state` and leaves it after ids
//   step(ctx, ids (B), state) -> logits (B, V)              one token per sequence through the recurrent state
// Both paths agree to float rounding. Token ids outside [0, V) throw InvalidArgument naming the id.
//
// Decode fast path (docs/decode.md): set_fast_path(opts) switches, each on its own, the packed in_proj /
// out_proj to the tiled shuffle kernel (Host only; needs pack(); relative error ~7e-4 per projection), the
// Mamba-2 step to the fused decode op (float rounding only; the default on Cuda), the tied head to a
// bf16 copy of the embedding, and (Cuda, packed Bi-Mamba-2, one sequence, with the fused step; on by
// default) every block to one persistent launch (ops/mamba2_decode_layers.hpp; float rounding only).
// set_fast_path({false, false, false}) is the exact path again; pack() / unpack() drop the tiles.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../nn/embedding.hpp"
#include "../ops/add.hpp"
#include "../ops/apply_mask.hpp"
#include "../nn/linear.hpp"
#include "../nn/mamba2_mixer.hpp"
#include "../nn/mamba_mixer.hpp"
#include "../nn/rms_norm.hpp"
#include "config.hpp"
#include "inference_state.hpp"

namespace bimamba {

struct ModelOptions {
  bool latent_binary = true;  // fp32 latent weights of Bi-Mamba's FBI projections (training, latent path, unpack())
  bool gradients = true;      // the ParamStore's gradient buffer (training)
  static ModelOptions inference() { return {false, false}; }
};

template <class Backend>
class LanguageModel {
 public:
  explicit LanguageModel(const ModelConfig& cfg, const ModelOptions& opts = {}) : cfg_(cfg), opts_(opts) {
    cfg.validate();
    const float eps = float(cfg.norm_eps);
    embedding_.declare(store_, "backbone.embeddings", cfg.vocab_size, cfg.d_model);
    norms_.resize(size_t(cfg.n_layer));
    if (mamba2()) mixers2_.resize(size_t(cfg.n_layer));
    else mixers1_.resize(size_t(cfg.n_layer));
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
      const std::string prefix = "backbone.layers." + std::to_string(i);
      norms_[size_t(i)].declare(store_, prefix + ".norm", cfg.d_model, eps);
      if (mamba2()) mixers2_[size_t(i)].declare(store_, prefix + ".mixer", cfg, opts.latent_binary);
      else mixers1_[size_t(i)].declare(store_, prefix + ".mixer", cfg);
    }
    norm_f_.declare(store_, "backbone.norm_f", cfg.d_model, eps);
    if (!cfg.tie_embeddings) lm_head_.declare(store_, "lm_head", cfg.d_model, cfg.vocab_size, false);
    store_.allocate(opts.gradients);
    embedding_.bind(store_);
    for (auto& n : norms_) n.bind(store_);
    for (auto& m : mixers2_) m.bind(store_);
    for (auto& m : mixers1_) m.bind(store_);
    norm_f_.bind(store_);
    if (!cfg.tie_embeddings) lm_head_.bind(store_);
  }
  LanguageModel(LanguageModel&&) noexcept = default;
  LanguageModel& operator=(LanguageModel&&) noexcept = default;

  const ModelConfig& config() const { return cfg_; }
  const ModelOptions& options() const { return opts_; }
  ParamStore<Backend>& params() { return store_; }
  const ParamStore<Backend>& params() const { return store_; }
  int64_t vocab_size() const { return cfg_.vocab_size; }

  InferenceState<Backend> new_state(int64_t batch) const { return InferenceState<Backend>(cfg_, batch); }

  // ids (B, L) -> logits (B, L, V); with a state (batch B) it starts from and updates it. mask (B, L), when
  // given, marks padding with 0 (real tokens 1): padding positions are zeroed at every mixer's input and
  // conv output and so leave the states untouched (HF's attention_mask for Mamba); their logits are
  // meaningless. positions() counts padding too.
  void forward(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, View<float, 3, Backend> logits,
               InferenceState<Backend>* state = nullptr, View<const float, 2, Backend> mask = {}) const {
    const int64_t B = ids.size(0), L = ids.size(1), T = B * L;
    check_shape(logits, {B, L, cfg_.vocab_size}, "LanguageModel::forward: logits");
    backbone(ctx, ids, state, mask, [&](TensorView<float, 2, Backend> n2) {
      head(ctx, n2, logits.template reshape<2>({T, cfg_.vocab_size}));
    });
  }
  // The same prefill, but only the logits of each sequence's last position L - 1, (B, V): what generation
  // needs. The head runs on B rows instead of B L (for a 32000-token vocabulary and D = 1536 that is 98
  // MFLOP saved per prompt token).
  void forward_last(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, View<float, 2, Backend> logits,
                    InferenceState<Backend>* state = nullptr, View<const float, 2, Backend> mask = {}) const {
    const int64_t B = ids.size(0), L = ids.size(1), D = cfg_.d_model;
    check_shape(logits, {B, cfg_.vocab_size}, "LanguageModel::forward_last: logits");
    backbone(ctx, ids, state, mask, [&](TensorView<float, 2, Backend> n2) {
      TensorView<float, 2, Backend> last(ctx.workspace().template take<float>(size_t(B * D)), {B, D});
      copy(TensorView<const float, 2, Backend>(n2.data() + (L - 1) * D, {B, D}, {L * D, 1}), last);
      head(ctx, last, logits);
    });
  }

 private:
  // Embedding, the layers and the final norm of forward; then last(normed (B L, D)).
  template <class Last>
  void backbone(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, InferenceState<Backend>* state,
                View<const float, 2, Backend> mask, Last&& last) const {
    const int64_t B = ids.size(0), L = ids.size(1), T = B * L, D = cfg_.d_model;
    if (state) check_state(*state, B);
    if (present(mask)) check_shape(mask, {B, L}, "LanguageModel::forward: mask");
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    TensorView<float, 3, Backend> residual(ws.template take<float>(size_t(T * D)), {B, L, D});
    TensorView<float, 3, Backend> normed(ws.template take<float>(size_t(T * D)), {B, L, D});
    TensorView<float, 3, Backend> mixed(ws.template take<float>(size_t(T * D)), {B, L, D});
    embedding_.forward(ctx, ids, residual);
    auto r2 = residual.template reshape<2>({T, D}), n2 = normed.template reshape<2>({T, D});
    norms_[0].forward(ctx, r2, n2);
    for (int64_t i = 0; i < cfg_.n_layer; ++i) {
      const MixerState<Backend> s = state ? state->layer(i) : MixerState<Backend>{};
      if (present(mask)) apply_mask(ctx, mask, normed);
      if (mamba2()) mixers2_[size_t(i)].forward(ctx, normed, mixed, s, mask);
      else mixers1_[size_t(i)].forward(ctx, normed, mixed, s, mask);
      next_norm(i).add_forward(ctx, r2, mixed.template reshape<2>({T, D}), n2);
    }
    last(n2);
    if (state)
      for (auto& p : state->positions()) p += L;
  }

 public:
  Tensor<float, 3, Backend> forward(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids) const {
    Tensor<float, 3, Backend> logits({ids.size(0), ids.size(1), cfg_.vocab_size});
    forward(ctx, ids, logits.view(), nullptr);
    return logits;
  }
  Tensor<float, 3, Backend> forward(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids,
                                    InferenceState<Backend>& state, View<const float, 2, Backend> mask = {}) const {
    Tensor<float, 3, Backend> logits({ids.size(0), ids.size(1), cfg_.vocab_size});
    forward(ctx, ids, logits.view(), &state, mask);
    return logits;
  }

  // ids (B) -> logits (B, V), advancing every sequence of the state by one token.
  void step(Context<Backend>& ctx, View<const int32_t, 1, Backend> ids, InferenceState<Backend>& state,
            View<float, 2, Backend> logits) const {
    const int64_t B = ids.size(0), D = cfg_.d_model;
    check_shape(logits, {B, cfg_.vocab_size}, "LanguageModel::step: logits");
    check_state(state, B);
    auto& ws = ctx.workspace();
    WorkspaceScope<Backend> scope(ws);
    TensorView<float, 2, Backend> residual(ws.template take<float>(size_t(B * D)), {B, D});
    TensorView<float, 2, Backend> normed(ws.template take<float>(size_t(B * D)), {B, D});
    TensorView<float, 2, Backend> mixed(ws.template take<float>(size_t(B * D)), {B, D});
    embedding_.forward(ctx, TensorView<const int32_t, 2, Backend>(ids.data(), {B, 1}, {ids.stride(0), 1}),
                       residual.template reshape<3>({B, 1, D}));
    const auto blocks = persistent_blocks(B, state);
    if (!blocks.empty()) mamba2_decode_layers(ctx, blocks, residual);  // the per-block ops where the kernel does not apply
    for (int64_t i = 0; i < cfg_.n_layer && blocks.empty(); ++i) {
      const RMSNorm<Backend>& norm = norms_[size_t(i)];
      if (mamba2()) {  // residual += mixer(norm(residual)), the norm and the add fused where they can be
        mixers2_[size_t(i)].step_residual(ctx, residual, norm.weight(), norm.eps(), state.layer(i));
      } else {
        norm.forward(ctx, residual, normed);
        mixers1_[size_t(i)].step(ctx, normed, mixed, state.layer(i));
        add(ctx, mixed, residual);
      }
    }
    norm_f_.forward(ctx, residual, normed);
    head(ctx, normed, logits);
    for (auto& p : state.positions()) p += 1;
  }

  Tensor<float, 2, Backend> step(Context<Backend>& ctx, View<const int32_t, 1, Backend> ids,
                                 InferenceState<Backend>& state) const {
    Tensor<float, 2, Backend> logits({ids.size(0), cfg_.vocab_size});
    step(ctx, ids, state, logits.view());
    return logits;
  }

  // Bi-Mamba: switch every in_proj / out_proj to packed sign bits of the current latent weights (no-op for
  // full-precision models); unpack() returns to the latent path.
  void pack() {
    for (auto& m : mixers2_) m.pack();
  }
  void unpack() {
    for (auto& m : mixers2_) m.unpack();
  }

  struct FastPath {
    bool tiled_signs = true;  // packed Bi-Mamba projections on TiledSigns (Host only; ignored when not packed)
    bool fused_step = true;   // Mamba-2 step through ops/mamba2_decode.hpp
    bool bf16_head = true;    // tied head on a bfloat16 copy of the embedding (ignored when untied)
    bool persistent = true;   // Cuda, packed Bi-Mamba-2, one sequence, fused step: every block in one launch
  };
  void set_fast_path(const FastPath& f) {
    for (auto& m : mixers2_) {
      if constexpr (std::is_same_v<Backend, Host>) m.set_tiled(f.tiled_signs && m.in_proj().packed());
      m.set_fused_step(f.fused_step);
    }
    embedding_.set_head_bf16(f.bf16_head && cfg_.tie_embeddings);
    persistent_ = f.persistent;
  }
  bool packed() const { return !mixers2_.empty() && mixers2_[0].in_proj().packed(); }

  // Inference-only Bi-Mamba (ModelOptions::latent_binary false): the HF names ("<mixer>.in_proj.weight", ...)
  // of the binary weights the model holds as bits only, in checkpoint order; empty otherwise.
  std::vector<std::string> sign_weight_names() const {
    std::vector<std::string> names;
    for (const auto& m : mixers2_)
      for (const Projection<Backend>* p : {&m.in_proj(), &m.out_proj()})
        if (p->binary() && !p->fbi().latent()) names.push_back(p->fbi().weight_name());
    return names;
  }
  // Gives every inference-only binary projection its bits: source(name) -> BitTensor<uint32_t, Host> (out, in)
  // for each name of sign_weight_names(). The model is packed afterwards.
  template <class Source>
  void set_signs(Source&& source) {
    for (auto& m : mixers2_)
      for (Projection<Backend>* p : {&m.in_proj(), &m.out_proj()})
        if (p->binary() && !p->fbi().latent()) {
          BitTensor<uint32_t, Host> bits = source(p->fbi().weight_name());
          if constexpr (std::is_same_v<Backend, Host>) p->fbi().set_signs(std::move(bits));
          else p->fbi().set_signs(to<Backend>(bits));
        }
  }
  // Bytes of sign bits held outside the store (standard layout and tiles).
  int64_t sign_bytes() const {
    int64_t n = 0;
    for (const auto& m : mixers2_)
      for (const Projection<Backend>* p : {&m.in_proj(), &m.out_proj()})
        if (p->binary()) n += p->fbi().sign_bytes();
    return n;
  }

  // The SSD chunk length of the Mamba-2 prefill (a tuning knob; results agree to rounding).
  void set_chunk_size(int64_t q) {
    for (auto& m : mixers2_) m.set_chunk_size(q);
  }

  const Embedding<Backend>& embedding() const { return embedding_; }
  const RMSNorm<Backend>& norm(int64_t i) const { return norms_[size_t(i)]; }
  const RMSNorm<Backend>& norm_f() const { return norm_f_; }
  const Mamba2Mixer<Backend>& mamba2_mixer(int64_t i) const { return mixers2_.at(size_t(i)); }
  const MambaMixer<Backend>& mamba_mixer(int64_t i) const { return mixers1_.at(size_t(i)); }

 private:
  bool mamba2() const { return cfg_.architecture == Architecture::Mamba2; }
  // The blocks of a packed Bi-Mamba-2 for mamba2_decode_layers (ops/mamba2_decode_layers.hpp: the persistent
  // kernel, or the same per-block ops as below for shapes it does not take), or none where the loop below runs
  // (Host, persistent off, several sequences, unpacked, unfused step).
  std::vector<Mamba2BlockDecodeWeights<Backend>> persistent_blocks(int64_t sequences,
                                                                   InferenceState<Backend>& state) const {
    std::vector<Mamba2BlockDecodeWeights<Backend>> blocks;
    if constexpr (!std::is_same_v<Backend, Host>) {
      if (!persistent_ || !mamba2() || sequences != 1) return blocks;
      for (const auto& m : mixers2_)
        if (!m.in_proj().packed() || !m.out_proj().packed() || !m.fused_step()) return blocks;
      for (int64_t i = 0; i < cfg_.n_layer; ++i)
        blocks.push_back(mixers2_[size_t(i)].decode_block(norms_[size_t(i)].weight(), norms_[size_t(i)].eps(),
                                                          state.layer(i)));
    } else {
      (void)sequences, (void)state;
    }
    return blocks;
  }
  const RMSNorm<Backend>& next_norm(int64_t i) const {
    return i + 1 < cfg_.n_layer ? norms_[size_t(i + 1)] : norm_f_;
  }
  void head(Context<Backend>& ctx, TensorView<const float, 2, Backend> h, TensorView<float, 2, Backend> logits) const {
    if (cfg_.tie_embeddings) embedding_.head(ctx, h, logits);
    else lm_head_.forward(ctx, h, logits);
  }
  void check_state(const InferenceState<Backend>& state, int64_t B) const {
    BIMAMBA_CHECK(state.batch() == B, "LanguageModel: state holds ", state.batch(), " sequences, the input ", B);
    BIMAMBA_CHECK(state.layers() == cfg_.n_layer, "LanguageModel: state has ", state.layers(), " layers, the model ",
                  cfg_.n_layer);
  }

  ModelConfig cfg_;
  ModelOptions opts_;
  ParamStore<Backend> store_;
  Embedding<Backend> embedding_;
  std::vector<RMSNorm<Backend>> norms_;
  std::vector<Mamba2Mixer<Backend>> mixers2_;
  std::vector<MambaMixer<Backend>> mixers1_;
  RMSNorm<Backend> norm_f_;
  Linear<Backend> lm_head_;
  bool persistent_ = true;  // FastPath::persistent's default
};

}  // namespace bimamba
