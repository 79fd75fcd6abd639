// Eigen interop: host views as Eigen::Map without copying.
//   as_matrix(view2d)  -> row-major Map with the view's row stride (inner stride must be 1)
//   as_vector(view1d)  -> column vector Map with the view's stride
#pragma once

#include <Eigen/Core>

#include "tensor_view.hpp"

namespace bimamba {

template <class T>
using RowMajorMatrix = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
auto as_matrix(TensorView<T, 2, Host> v) {
  BIMAMBA_CHECK(v.stride(1) == 1 || v.size(1) <= 1, "as_matrix: inner stride is ", v.stride(1), ", must be 1");
  using Matrix = std::conditional_t<std::is_const_v<T>, const RowMajorMatrix<T>, RowMajorMatrix<T>>;
  return Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>(
      v.data(), v.size(0), v.size(1), Eigen::OuterStride<>(v.size(0) > 1 ? v.stride(0) : v.size(1)));
}

template <class T>
auto as_vector(TensorView<T, 1, Host> v) {
  using Vector = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, 1>;
  using Mapped = std::conditional_t<std::is_const_v<T>, const Vector, Vector>;
  return Eigen::Map<Mapped, Eigen::Unaligned, Eigen::InnerStride<>>(v.data(), v.size(0),
                                                                     Eigen::InnerStride<>(v.stride(0)));
}

}  // namespace bimamba
