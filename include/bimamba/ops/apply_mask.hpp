// apply_mask: x[b, l, :] *= mask[b, l] — zeroes padding positions (HF's apply_mask_to_padding_states, with
// the attention mask 1 for real tokens and 0 for padding). x (B, L, C) any strides; mask (B, L) float.
#pragma once

#include "common.hpp"
#include "host/apply_mask.hpp"
#if defined(__CUDACC__) && __has_include("cuda/apply_mask.cuh")
#include "cuda/apply_mask.cuh"
#endif

namespace bimamba {

template <class Backend>
void apply_mask(Context<Backend>& ctx, View<const float, 2, Backend> mask, View<float, 3, Backend> x) {
  check_shape(mask, {x.size(0), x.size(1)}, "apply_mask: mask");
  detail::apply_mask_impl(ctx, mask, x);
}

}  // namespace bimamba
