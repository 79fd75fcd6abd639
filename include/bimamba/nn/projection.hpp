// Projection<Backend>: a mixer's in_proj / out_proj, dense (Linear) in Mamba-2 / Mamba-1 and FBI-Linear
// (BinaryLinear) in Bi-Mamba, chosen at declare time; one forward for both. latent = false declares a
// binary projection inference-only (no latent weight in the store; BinaryLinear::set_signs gives it bits).
// forward_rms_normed / forward_accumulate / forward_rms_normed_accumulate: the decode step's norms and residual
// add folded into a packed binary projection's kernel (ops/binary_linear_fused.hpp; one launch on Cuda), the
// composition otherwise.
#pragma once

#include <cstdint>
#include <string>

#include "../ops/add.hpp"
#include "../ops/binary_linear_fused.hpp"
#include "../ops/rms_norm.hpp"
#include "binary_linear.hpp"
#include "linear.hpp"

namespace bimamba {

template <class Backend>
class Projection {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t in, int64_t out, bool bias, bool binary,
               bool latent = true) {
    binary_ = binary;
    if (binary) {
      BIMAMBA_CHECK(!bias, prefix, ": a binary (FBI-Linear) projection with a bias is not supported");
      fbi_.declare(store, prefix, in, out, latent);
    } else {
      dense_.declare(store, prefix, in, out, bias);
    }
  }
  void bind(ParamStore<Backend>& store) { binary_ ? fbi_.bind(store) : dense_.bind(store); }

  // x (T, in) -> y (T, out).
  void forward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) const {
    binary_ ? fbi_.forward(ctx, x, y) : dense_.forward(ctx, x, y);
  }

  // x (T, in) -> y (T, out) = forward(rms_norm(x, norm_weight, eps)); norm_weight (in).
  void forward_rms_normed(Context<Backend>& ctx, View<const float, 2, Backend> x, View<const float, 1, Backend> norm_weight,
                          float eps, View<float, 2, Backend> y) const {
    if (fused()) {
      binary_linear_rms_normed(ctx, x, norm_weight, eps, fbi_.signs().cview(), fbi_.alpha(), fbi_.beta(), y);
      return;
    }
    WorkspaceScope<Backend> scope(ctx.workspace());
    TensorView<float, 2, Backend> normed(ctx.workspace().template take<float>(size_t(x.size(0) * x.size(1))),
                                         {x.size(0), x.size(1)});
    rms_norm(ctx, x, norm_weight, eps, normed);
    forward(ctx, normed, y);
  }

  // x (T, in); y (T, out) += forward(x). y must not alias x.
  void forward_accumulate(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) const {
    if (fused()) {
      binary_linear_accumulate(ctx, x, fbi_.signs().cview(), fbi_.alpha(), fbi_.beta(), y);
      return;
    }
    WorkspaceScope<Backend> scope(ctx.workspace());
    TensorView<float, 2, Backend> part(ctx.workspace().template take<float>(size_t(y.size(0) * y.size(1))),
                                       {y.size(0), y.size(1)});
    forward(ctx, x, part);
    add(ctx, part, y);
  }

  // x (T, in); y (T, out) += forward(rms_norm(x, norm_weight, eps)). y must not alias x.
  void forward_rms_normed_accumulate(Context<Backend>& ctx, View<const float, 2, Backend> x,
                                     View<const float, 1, Backend> norm_weight, float eps,
                                     View<float, 2, Backend> y) const {
    if (fused()) {
      binary_linear_rms_normed_accumulate(ctx, x, norm_weight, eps, fbi_.signs().cview(), fbi_.alpha(), fbi_.beta(), y);
      return;
    }
    WorkspaceScope<Backend> scope(ctx.workspace());
    TensorView<float, 2, Backend> normed(ctx.workspace().template take<float>(size_t(x.size(0) * x.size(1))),
                                         {x.size(0), x.size(1)});
    rms_norm(ctx, x, norm_weight, eps, normed);
    forward_accumulate(ctx, normed, y);
  }

  bool binary() const { return binary_; }
  void pack() {
    if (binary_) fbi_.pack();
  }
  void unpack() {
    if (binary_) fbi_.unpack();
  }
  bool packed() const { return binary_ && fbi_.packed(); }
  // Host decode fast path: packed binary projections use the tiled shuffle kernel (BinaryLinear::set_tiled).
  void set_tiled(bool on) {
    if (binary_ && (fbi_.packed() || on)) fbi_.set_tiled(on);
  }
  bool tiled() const { return binary_ && fbi_.tiled(); }
  const Linear<Backend>& dense() const { return dense_; }
  const BinaryLinear<Backend>& fbi() const { return fbi_; }
  BinaryLinear<Backend>& fbi() { return fbi_; }

 private:
  // Packed signs in the standard layout: the fused ops apply (the Host tiled kernel composes instead).
  bool fused() const { return binary_ && fbi_.packed() && !fbi_.tiled(); }

  bool binary_ = false;
  Linear<Backend> dense_;
  BinaryLinear<Backend> fbi_;
};

}  // namespace bimamba
