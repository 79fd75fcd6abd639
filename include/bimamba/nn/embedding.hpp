// Embedding<Backend>: token embedding table "<prefix>.weight" (V, D) in a ParamStore, and the tied LM head
// (logits = h E^T) that reuses it.
#pragma once

#include <cstdint>
#include <string>

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
    linear(ctx, h, weight_, {}, logits);
  }

  int64_t vocab() const { return vocab_; }
  int64_t dim() const { return dim_; }
  TensorView<float, 2, Backend> weight() const { return weight_; }
  int weight_id() const { return id_; }

 private:
  int64_t vocab_ = 0, dim_ = 0;
  int id_ = -1;
  TensorView<float, 2, Backend> weight_;
};

}  // namespace bimamba
