// Tensor<T, Rank, Backend>: owns a dense row-major buffer of backend memory; move-only. New tensors are
// zero-filled. view() / cview() give TensorViews, and a Tensor converts implicitly to both, so ops taking
// views accept tensors directly. Copies between backends are explicit (tensor/copy.hpp).
#pragma once

#include <utility>

#include "../core/memory.hpp"
#include "tensor_view.hpp"

namespace bimamba {

template <class T, int Rank, class Backend>
class Tensor {
  static_assert(std::is_trivially_copyable_v<T>, "Tensor elements must be trivially copyable");

 public:
  using value_type = T;
  using backend_type = Backend;
  static constexpr int rank = Rank;

  Tensor() = default;
  explicit Tensor(const Extents<Rank>& shape) : shape_(shape) {
    for (int d = 0; d < Rank; ++d) BIMAMBA_CHECK(shape[d] >= 0, "Tensor: negative extent in ", shape_string<Rank>(shape));
    const size_t bytes = size_t(numel()) * sizeof(T);
    data_ = static_cast<T*>(MemoryOps<Backend>::allocate(bytes));
    MemoryOps<Backend>::fill_zero(data_, bytes);
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&& other) noexcept : data_(std::exchange(other.data_, nullptr)), shape_(std::exchange(other.shape_, {})) {}
  Tensor& operator=(Tensor&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      shape_ = std::exchange(other.shape_, {});
    }
    return *this;
  }
  ~Tensor() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  const Extents<Rank>& shape() const { return shape_; }
  int64_t size(int d) const { return shape_[d]; }
  int64_t numel() const { return product<Rank>(shape_); }
  size_t bytes() const { return size_t(numel()) * sizeof(T); }
  bool empty() const { return numel() == 0; }

  TensorView<T, Rank, Backend> view() { return {data_, shape_}; }
  TensorView<const T, Rank, Backend> view() const { return {data_, shape_}; }
  TensorView<const T, Rank, Backend> cview() const { return {data_, shape_}; }
  operator TensorView<T, Rank, Backend>() { return view(); }
  operator TensorView<const T, Rank, Backend>() const { return cview(); }

  // Host only: element access.
  template <class... Index, class B = Backend, class = std::enable_if_t<is_host_v<B>>>
  T& operator()(Index... index) {
    return view()(index...);
  }
  template <class... Index, class B = Backend, class = std::enable_if_t<is_host_v<B>>>
  const T& operator()(Index... index) const {
    return cview()(index...);
  }

  void zero() { MemoryOps<Backend>::fill_zero(data_, bytes()); }

 private:
  void release() {
    if (data_) MemoryOps<Backend>::deallocate(data_);
    data_ = nullptr;
  }

  T* data_ = nullptr;
  Extents<Rank> shape_{};
};

}  // namespace bimamba
