// Nondeduced<Backend>: names Backend in a parameter type without taking part in template argument
// deduction, so that a function template deduces Backend from its Context alone and its TensorView
// parameters accept Tensors, views of non-const T and `{}` through implicit conversions.
//
//   template <class Backend>
//   double f(Context<Backend>& ctx, TensorView<const float, 3, Nondeduced<Backend>> x);   // f(ctx, tensor)
#pragma once

namespace bimamba {
namespace detail {
template <class T>
struct NondeducedType {
  using type = T;
};
}  // namespace detail

template <class T>
using Nondeduced = typename detail::NondeducedType<T>::type;

}  // namespace bimamba
