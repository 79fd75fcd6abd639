// Explicit copies within and between backends.
//   copy(src, dst):  same shape; within Host any strides are allowed; otherwise both views are contiguous,
//                    or (rank 2) both have contiguous rows at any pitch (one 2-D copy, e.g. the last position
//                    of every sequence of a (B, L, D) activation).
//   to<Dst>(src):    a new Tensor on backend Dst holding src's elements.
//   to_host(src):    to<Host>(src).
//   tensor_from(values, shape): a host tensor filled from a vector (sizes must match).
// Copies involving Cuda synchronize (cudaMemcpy) and need core/cuda_runtime.hpp included.
#pragma once

#include <type_traits>
#include <vector>

#include "tensor.hpp"

namespace bimamba {

template <class T, int Rank, class Src, class Dst>
void copy(TensorView<const T, Rank, Src> src, TensorView<T, Rank, Dst> dst) {
  BIMAMBA_CHECK(src.shape() == dst.shape(), "copy: source shape ", shape_string<Rank>(src.shape()),
                " differs from destination shape ", shape_string<Rank>(dst.shape()));
  const size_t bytes = size_t(src.numel()) * sizeof(T);
  if constexpr (is_host_v<Src> && is_host_v<Dst>) {
    if (src.is_contiguous() && dst.is_contiguous()) {
      MemoryOps<Host>::copy_within(dst.data(), src.data(), bytes);
      return;
    }
    if constexpr (Rank == 1) {
      for (int64_t i = 0; i < src.size(0); ++i) dst(i) = src(i);
    } else {
      for (int64_t i = 0; i < src.size(0); ++i)
        copy<T, Rank - 1, Host, Host>(src[i], dst[i]);
    }
  } else {
    using Device = std::conditional_t<is_host_v<Src>, Dst, Src>;
    if constexpr (Rank == 2) {
      if (!(src.is_contiguous() && dst.is_contiguous()) && src.stride(1) == 1 && dst.stride(1) == 1) {
        // Rows of contiguous elements at a pitch (a strided row selection, a column block): one 2-D copy.
        MemoryOps<Device>::copy_rows(dst.data(), size_t(dst.stride(0)) * sizeof(T), src.data(),
                                     size_t(src.stride(0)) * sizeof(T), size_t(src.size(1)) * sizeof(T),
                                     size_t(src.size(0)));
        return;
      }
    }
    BIMAMBA_CHECK(src.is_contiguous() && dst.is_contiguous(), "copy between ", Src::name, " and ", Dst::name,
                  " needs contiguous views (or, for rank 2, contiguous rows)");
    if constexpr (is_host_v<Src>) {
      MemoryOps<Dst>::copy_from_host(dst.data(), src.data(), bytes);
    } else if constexpr (is_host_v<Dst>) {
      MemoryOps<Src>::copy_to_host(dst.data(), src.data(), bytes);
    } else {
      MemoryOps<Dst>::copy_within(dst.data(), src.data(), bytes);
    }
  }
}

// Deduction helper: accepts views of T or const T and tensors (converted through their views).
template <class T, int Rank, class Src, class Dst>
void copy(TensorView<T, Rank, Src> src, TensorView<T, Rank, Dst> dst) {
  copy<std::remove_const_t<T>, Rank, Src, Dst>(TensorView<const std::remove_const_t<T>, Rank, Src>(src), dst);
}

template <class Dst, class T, int Rank, class Src>
Tensor<std::remove_const_t<T>, Rank, Dst> to(TensorView<T, Rank, Src> src) {
  using V = std::remove_const_t<T>;
  Tensor<V, Rank, Dst> out(src.shape());
  copy<V, Rank, Src, Dst>(TensorView<const V, Rank, Src>(src), out.view());
  return out;
}

template <class Dst, class T, int Rank, class Src>
Tensor<T, Rank, Dst> to(const Tensor<T, Rank, Src>& src) {
  return to<Dst>(src.cview());
}

template <class T, int Rank, class Src>
Tensor<std::remove_const_t<T>, Rank, Host> to_host(TensorView<T, Rank, Src> src) {
  return to<Host>(src);
}

template <class T, int Rank, class Src>
Tensor<T, Rank, Host> to_host(const Tensor<T, Rank, Src>& src) {
  return to<Host>(src.cview());
}

template <class T, int Rank>
Tensor<T, Rank, Host> tensor_from(const std::vector<T>& values, const Extents<Rank>& shape) {
  BIMAMBA_CHECK(int64_t(values.size()) == product<Rank>(shape), "tensor_from: ", values.size(),
                " values do not fill shape ", shape_string<Rank>(shape));
  Tensor<T, Rank, Host> out(shape);
  MemoryOps<Host>::copy_within(out.data(), values.data(), values.size() * sizeof(T));
  return out;
}

template <class T, int Rank, class Backend>
std::vector<std::remove_const_t<T>> to_vector(TensorView<T, Rank, Backend> src) {
  auto host = to_host(src);
  return std::vector<std::remove_const_t<T>>(host.data(), host.data() + host.numel());
}

template <class T, int Rank, class Backend>
std::vector<T> to_vector(const Tensor<T, Rank, Backend>& src) {
  return to_vector(src.cview());
}

}  // namespace bimamba
