// Whole-model gradient utilities over a ParamStore's flat gradient buffer (one pass each):
//
//   grad_norm(ctx, store)                 ||g||_2 over every parameter (sum of squares in double)
//   clip_grad_norm(ctx, store, max_norm)  returns n = ||g||_2; if n is finite and n > max_norm, scales
//                                         g *= max_norm / (n + 1e-6) (PyTorch's clip_grad_norm_); a
//                                         non-finite n leaves g untouched (the optimizer's policy decides)
//   scale_grads(ctx, store, factor)       g *= factor
//   find_non_finite(ctx, store, buffer)   the first NaN / Inf in a flat buffer laid out like the store
//                                         (store.grads(), store.params(), optimizer state), named by the
//                                         parameter that holds it
//   check_finite_grads(ctx, store, what)  throws NumericError naming `what` (e.g. "step 12") and the
//                                         first parameter with a non-finite gradient
//   micro_batch(i, n)                     gradient accumulation over n micro-batches: micro-batch i uses
//                                         loss scale 1/n (so the summed gradient is that of the mean loss),
//                                         backward GradientMode Overwrite for i == 0 and Accumulate after,
//                                         and the optimizer steps after the last one.
// Results do not depend on the thread count.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "../core/context.hpp"
#include "gradient_mode.hpp"
#include "host/grad_utils.hpp"
#if defined(__CUDACC__) && __has_include("cuda/grad_utils.cuh")
#include "cuda/grad_utils.cuh"
#endif
#include "nondeduced.hpp"
#include "param_store.hpp"

namespace bimamba {

// What to do when a gradient holds NaN or Inf.
enum class NonFinitePolicy {
  Throw,     // throw NumericError naming the parameter
  SkipStep,  // leave parameters and optimizer state untouched, log a warning, report the skip
};

struct NonFiniteValue {
  int param = -1;     // ParamStore id, -1 when the element lies in the padding between tensors
  std::string name;   // the parameter's name, or "padding after '<name>'"
  int64_t index = 0;  // element index within the parameter (flat, row-major) or the padding
  float value = 0;    // the NaN / Inf found
};

template <class Backend>
double grad_norm(Context<Backend>& ctx, const ParamStore<Backend>& store) {
  return std::sqrt(detail::sum_squares_impl(ctx, store.grads()));
}

template <class Backend>
void scale_grads(Context<Backend>& ctx, ParamStore<Backend>& store, float factor) {
  detail::scale_impl(ctx, store.grads(), factor);
}

template <class Backend>
double clip_grad_norm(Context<Backend>& ctx, ParamStore<Backend>& store, double max_norm) {
  BIMAMBA_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  const double norm = grad_norm(ctx, store);
  if (std::isfinite(norm) && norm > max_norm) scale_grads(ctx, store, float(max_norm / (norm + 1e-6)));
  return norm;
}

template <class Backend>
std::optional<NonFiniteValue> find_non_finite(Context<Backend>& ctx, const ParamStore<Backend>& store,
                                              TensorView<const float, 1, Nondeduced<Backend>> buffer) {
  BIMAMBA_CHECK(buffer.size(0) == store.flat_size(), "find_non_finite: buffer has ", buffer.size(0),
                " elements, the store's layout ", store.flat_size());
  const int64_t i = detail::first_non_finite_impl(ctx, buffer);
  if (i < 0) return std::nullopt;
  NonFiniteValue found;
  MemoryOps<Backend>::copy_to_host(&found.value, buffer.data() + i, sizeof(float));
  const auto& entries = store.entries();
  for (size_t k = 0; k < entries.size(); ++k) {
    const auto& e = entries[k];
    if (i < e.offset) break;
    if (i < e.offset + e.numel) {
      found.param = int(k);
      found.name = e.name;
      found.index = i - e.offset;
      return found;
    }
    found.name = "padding after '" + e.name + "'";
    found.index = i - (e.offset + e.numel);
  }
  return found;
}

namespace detail {
inline std::string describe(const NonFiniteValue& bad) {
  return concat("'", bad.name, "' holds ", bad.value, " at element ", bad.index);
}
}  // namespace detail

template <class Backend>
void check_finite_grads(Context<Backend>& ctx, const ParamStore<Backend>& store, const std::string& what) {
  if (auto bad = find_non_finite(ctx, store, store.grads()))
    BIMAMBA_THROW(NumericError, what, ": the gradient of ", detail::describe(*bad));
}

struct MicroBatch {
  float loss_scale = 1.0f;                               // scale for the loss gradient (1/n)
  GradientMode backward_mode = GradientMode::Overwrite;  // for the parameter gradients
  bool last = true;                                      // step the optimizer after this one
};

inline MicroBatch micro_batch(int i, int n) {
  BIMAMBA_CHECK(n >= 1 && i >= 0 && i < n, "micro_batch: index ", i, " outside [0, ", n, ")");
  return {float(1.0 / n), i == 0 ? GradientMode::Overwrite : GradientMode::Accumulate, i == n - 1};
}

}  // namespace bimamba
