// TensorView<T, Rank, Backend>: a non-owning strided view, trivially copyable, passed by value into ops and
// kernels (the mdspan / CuTe-engine idea). The backend is part of the type, so a host view cannot be handed
// to a device kernel by mistake.
//
//   element (i0, ..., i{R-1}) lives at data[i0 * stride[0] + ... + i{R-1} * stride[R-1]]   (strides in elements)
//
// Views of T convert implicitly to views of const T. Shapes and strides are int64_t. A default-constructed
// view is empty (null data, all extents 0).
#pragma once

#include <array>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>

#include "../core/backend.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"

namespace bimamba {

template <int Rank>
using Extents = std::array<int64_t, Rank>;

// Row-major (C order) strides of a shape.
template <int Rank>
BIMAMBA_HOST_DEVICE constexpr Extents<Rank> row_major_strides(const Extents<Rank>& shape) {
  Extents<Rank> strides{};
  int64_t s = 1;
  for (int d = Rank - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

template <int Rank>
BIMAMBA_HOST_DEVICE constexpr int64_t product(const Extents<Rank>& shape) {
  int64_t n = 1;
  for (int d = 0; d < Rank; ++d) n *= shape[d];
  return n;
}

template <int Rank>
std::string shape_string(const Extents<Rank>& shape) {
  std::ostringstream out;
  out << '[';
  for (int d = 0; d < Rank; ++d) out << (d ? ", " : "") << shape[d];
  out << ']';
  return out.str();
}

template <class T, int Rank, class Backend>
class TensorView {
  static_assert(Rank >= 1, "TensorView needs rank >= 1");
  static_assert(is_backend_v<Backend>, "Backend must be bimamba::Host or bimamba::Cuda");

 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using backend_type = Backend;
  static constexpr int rank = Rank;

  TensorView() = default;
  BIMAMBA_HOST_DEVICE TensorView(T* data, const Extents<Rank>& shape)
      : data_(data), shape_(shape), strides_(row_major_strides<Rank>(shape)) {}
  BIMAMBA_HOST_DEVICE TensorView(T* data, const Extents<Rank>& shape, const Extents<Rank>& strides)
      : data_(data), shape_(shape), strides_(strides) {}

  // View of T -> view of const T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  BIMAMBA_HOST_DEVICE TensorView(const TensorView<U, Rank, Backend>& other)
      : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

  BIMAMBA_HOST_DEVICE T* data() const { return data_; }
  BIMAMBA_HOST_DEVICE const Extents<Rank>& shape() const { return shape_; }
  BIMAMBA_HOST_DEVICE const Extents<Rank>& strides() const { return strides_; }
  BIMAMBA_HOST_DEVICE int64_t size(int d) const { return shape_[d]; }
  BIMAMBA_HOST_DEVICE int64_t stride(int d) const { return strides_[d]; }
  BIMAMBA_HOST_DEVICE int64_t numel() const { return product<Rank>(shape_); }
  BIMAMBA_HOST_DEVICE bool empty() const { return numel() == 0; }

  // True when the elements are laid out densely in row-major order.
  BIMAMBA_HOST_DEVICE bool is_contiguous() const {
    int64_t s = 1;
    for (int d = Rank - 1; d >= 0; --d) {
      if (shape_[d] != 1 && strides_[d] != s) return false;
      s *= shape_[d];
    }
    return true;
  }

  template <class... Index>
  BIMAMBA_HOST_DEVICE T& operator()(Index... index) const {
    static_assert(sizeof...(Index) == Rank, "operator() needs one index per dimension");
    const int64_t idx[] = {int64_t(index)...};
    int64_t offset = 0;
    for (int d = 0; d < Rank; ++d) offset += idx[d] * strides_[d];
    return data_[offset];
  }

  // Drops the first dimension: the (Rank-1)-dimensional slice at index i.
  template <int R = Rank, class = std::enable_if_t<(R > 1)>>
  BIMAMBA_HOST_DEVICE TensorView<T, Rank - 1, Backend> operator[](int64_t i) const {
    Extents<Rank - 1> shape{}, strides{};
    for (int d = 1; d < Rank; ++d) {
      shape[d - 1] = shape_[d];
      strides[d - 1] = strides_[d];
    }
    return {data_ + i * strides_[0], shape, strides};
  }

  // The sub-range [start, start + length) along dimension dim.
  TensorView narrow(int dim, int64_t start, int64_t length) const {
    BIMAMBA_CHECK(dim >= 0 && dim < Rank, "narrow: dimension ", dim, " out of range for rank ", Rank);
    BIMAMBA_CHECK(start >= 0 && length >= 0 && start + length <= shape_[dim], "narrow: range [", start, ", ",
                  start + length, ") outside dimension ", dim, " of size ", shape_[dim]);
    TensorView r = *this;
    r.data_ = data_ + start * strides_[dim];
    r.shape_[dim] = length;
    return r;
  }

  // The same elements under another shape; the view must be contiguous and the element counts equal.
  template <int NewRank>
  TensorView<T, NewRank, Backend> reshape(const Extents<NewRank>& shape) const {
    BIMAMBA_CHECK(is_contiguous(), "reshape: view of shape ", shape_string<Rank>(shape_), " is not contiguous");
    BIMAMBA_CHECK(product<NewRank>(shape) == numel(), "reshape: cannot view ", shape_string<Rank>(shape_), " as ",
                  shape_string<NewRank>(shape));
    return {data_, shape};
  }

  // The contiguous elements as a rank-1 view.
  TensorView<T, 1, Backend> flat() const { return reshape<1>({numel()}); }

 private:
  T* data_ = nullptr;
  Extents<Rank> shape_{};
  Extents<Rank> strides_{};
};

// Throws InvalidArgument unless the view has exactly the expected shape; `what` names the tensor.
template <class T, int Rank, class Backend>
void check_shape(const TensorView<T, Rank, Backend>& view, const Extents<Rank>& expected, const char* what) {
  BIMAMBA_CHECK(view.shape() == expected, what, " has shape ", shape_string<Rank>(view.shape()), ", expected ",
                shape_string<Rank>(expected));
}

}  // namespace bimamba
