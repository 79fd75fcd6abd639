// Embedding<Backend>: token embedding table "<prefix>.weight" (V, D) in a ParamStore, and the tied LM head
// (logits = h E^T) that reuses it. Decode fast path (both backends): set_head_bf16(true) keeps a bfloat16
// copy of the table (made from the weights as they are then) and the head runs dense_gemv on it: half the
// bytes per token, logits within bf16's relative rounding 2^-9 of each weight (ops/dense_gemv.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/dtype.hpp"
#include "../tensor/copy.hpp"
#include "../ops/dense_gemv.hpp"
#include "../ops/embedding.hpp"
#include "../ops/linear.hpp"
#include "../train/param_store.hpp"

namespace bimamba {

template <class Backend>
class Embedding {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t vocab, int64_t dim) {
    vocab_ = vocab, dim_ = dim;
    id_ = store.declare(prefix + ".weight", {vocab, dim});
  }
  void bind(ParamStore<Backend>& store) { weight_ = store.template param<2>(id_); }

  // ids (B, L) -> out (B, L, D); an id outside [0, V) throws InvalidArgument naming it.
  void forward(Context<Backend>& ctx, View<const int32_t, 2, Backend> ids, View<float, 3, Backend> out) const {
    embedding(ctx, ids, weight_, out);
  }
  // Tied head: h (T, D) -> logits (T, V).
  void head(Context<Backend>& ctx, View<const float, 2, Backend> h, View<float, 2, Backend> logits) const {
    if (head_bf16_.numel() > 0) dense_gemv(ctx, h, head_bf16_.cview(), logits);
    else linear(ctx, h, weight_, {}, logits);
  }

  void set_head_bf16(bool on) {
    head_bf16_ = Tensor<bfloat16, 2, Backend>();
    if (!on) return;
    const auto weights = to_vector(TensorView<const float, 2, Backend>(weight_));  // (V, D), on the host
    Tensor<bfloat16, 2, Host> copy({vocab_, dim_});
    for (int64_t i = 0; i < copy.numel(); ++i) copy.data()[i] = bfloat16(weights[size_t(i)]);
    if constexpr (std::is_same_v<Backend, Host>) head_bf16_ = std::move(copy);
    else head_bf16_ = to<Backend>(copy);
  }
  bool head_bf16() const { return head_bf16_.numel() > 0; }

  int64_t vocab() const { return vocab_; }
  int64_t dim() const { return dim_; }
  TensorView<float, 2, Backend> weight() const { return weight_; }
  int weight_id() const { return id_; }

 private:
  int64_t vocab_ = 0, dim_ = 0;
  int id_ = -1;
  TensorView<float, 2, Backend> weight_;
  Tensor<bfloat16, 2, Backend> head_bf16_;  // (V, D) after set_head_bf16(true)
};

}  // namespace bimamba
