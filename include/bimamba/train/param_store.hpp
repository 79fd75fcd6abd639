// ParamStore<Backend>: every trainable float parameter of a model in one allocation, its gradients in a
// second of the same layout (llm.c's malloc_and_point_parameters). Modules hold views into it; AdamW, the
// gradient norm, clipping and all-reduce are single passes over the flat buffers.
//
//   ParamStore<Host> store;
//   int w = store.declare("backbone.layers.0.norm.weight", {D});       // 1. declare every tensor
//   store.allocate();                                                  // 2. one buffer each, zero-filled
//   auto weight = store.param<1>(w);   auto dweight = store.grad<1>(w); // 3. views (same shape)
//
// Tensors are laid out in declaration order, each starting at a multiple of 16 floats (64 bytes). Each
// entry carries its parameter group (decay or not) for the optimizer. allocate(false) makes an
// inference-only store without the gradient buffer (grad() / grads() then throw / are empty).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "../tensor/tensor.hpp"

namespace bimamba {

enum class ParamGroup { Decay, NoDecay };

template <class Backend>
class ParamStore {
 public:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;  // in floats, into the flat buffers
    int64_t numel = 0;
    ParamGroup group = ParamGroup::Decay;
  };

  ParamStore() = default;
  ParamStore(ParamStore&&) noexcept = default;
  ParamStore& operator=(ParamStore&&) noexcept = default;

  // Declares a tensor; returns its id. Names must be unique. Only before allocate().
  int declare(const std::string& name, std::vector<int64_t> shape, ParamGroup group = ParamGroup::Decay) {
    BIMAMBA_CHECK(!allocated(), "ParamStore: declare('", name, "') after allocate()");
    BIMAMBA_CHECK(index_.count(name) == 0, "ParamStore: parameter '", name, "' declared twice");
    int64_t numel = 1;
    for (int64_t e : shape) {
      BIMAMBA_CHECK(e >= 0, "ParamStore: negative extent in '", name, "'");
      numel *= e;
    }
    Entry entry{name, std::move(shape), total_, numel, group};
    total_ += (numel + 15) / 16 * 16;
    entries_.push_back(std::move(entry));
    index_[name] = int(entries_.size() - 1);
    return int(entries_.size() - 1);
  }

  // Allocates the parameter and (unless gradients is false) gradient buffers, zero-filled.
  void allocate(bool gradients = true) {
    BIMAMBA_CHECK(!allocated(), "ParamStore: allocate() called twice");
    params_ = Tensor<float, 1, Backend>({total_});
    if (gradients) grads_ = Tensor<float, 1, Backend>({total_});
    allocated_ = true;
  }
  bool allocated() const { return allocated_; }
  bool has_grads() const { return allocated_ && grads_.numel() == total_; }

  const std::vector<Entry>& entries() const { return entries_; }
  int size() const { return int(entries_.size()); }
  // Id of a parameter, or -1.
  int find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  int id(const std::string& name) const {
    const int i = find(name);
    BIMAMBA_CHECK(i >= 0, "ParamStore: no parameter named '", name, "'");
    return i;
  }

  template <int Rank>
  TensorView<float, Rank, Backend> param(int id) {
    return view<Rank>(params_, id);
  }
  template <int Rank>
  TensorView<float, Rank, Backend> grad(int id) {
    BIMAMBA_CHECK(has_grads(), "ParamStore: grad() of an inference-only store (allocated without gradients)");
    return view<Rank>(grads_, id);
  }

  // Flat buffers (padding between tensors included; it stays zero).
  TensorView<float, 1, Backend> params() { return params_.view(); }
  TensorView<float, 1, Backend> grads() { return grads_.view(); }
  TensorView<const float, 1, Backend> params() const { return params_.cview(); }
  TensorView<const float, 1, Backend> grads() const { return grads_.cview(); }
  int64_t flat_size() const { return total_; }
  int64_t parameter_count() const {
    int64_t n = 0;
    for (const auto& e : entries_) n += e.numel;
    return n;
  }

  void zero_grad() { grads_.zero(); }

 private:
  template <int Rank>
  TensorView<float, Rank, Backend> view(Tensor<float, 1, Backend>& buffer, int id) {
    BIMAMBA_CHECK(allocated_, "ParamStore: views need allocate() first");
    BIMAMBA_CHECK(id >= 0 && id < size(), "ParamStore: no parameter with id ", id);
    const Entry& e = entries_[size_t(id)];
    BIMAMBA_CHECK(int(e.shape.size()) == Rank, "ParamStore: '", e.name, "' has rank ", e.shape.size(),
                  ", asked for rank ", Rank);
    Extents<Rank> shape{};
    for (int d = 0; d < Rank; ++d) shape[d] = e.shape[size_t(d)];
    return {buffer.data() + e.offset, shape};
  }

  std::vector<Entry> entries_;
  std::unordered_map<std::string, int> index_;
  int64_t total_ = 0;
  bool allocated_ = false;
  Tensor<float, 1, Backend> params_;
  Tensor<float, 1, Backend> grads_;
};

}  // namespace bimamba
