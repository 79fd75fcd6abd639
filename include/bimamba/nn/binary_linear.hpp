// BinaryLinear<Backend>: the FBI-Linear layer of Bi-Mamba (DESIGN.md, FBI-Linear), y = x W_eff^T with
//   W_eff[i, j] = alpha[j] * s(W[i, j]) + beta[j],  s(w) = +1 for w >= 0 else -1,
// alpha = "<prefix>.wscale" (1, in), beta = "<prefix>.wbias" (1, in), latent W = "<prefix>.weight" (out, in),
// all in the ParamStore (trainable). No bias (Bi-Mamba's projections have none).
//
// Two forward paths that agree to rounding:
//   latent: fbi_linear (ops/fbi_linear.hpp): W_eff in workspace memory times a dense GEMM, or on Cuda in bf16
//           one sign GEMM with alpha and beta folded into x;
//   packed: after pack(), the signs s(W) live in a BitTensor<uint32_t> outside the store and the op
//           binary_linear computes S (alpha ⊙ x) + (beta · x) 1 from the bits.
// pack() reads the latent weight as it is now; later changes to it are not seen until pack() again.
// Host decode fast path: set_tiled(true) on a packed layer also keeps a TiledSigns copy of the same bits
// and forward uses the int16 shuffle kernel on it (quantized activations, relative error ~7e-4, see
// ops/host/binary_linear_tiled.hpp and docs/decode.md); set_tiled(false) returns to the exact kernel.
//
// Inference-only layers (declare(..., latent = false), model/load.hpp ModelOptions::inference()): the
// latent weight is not declared in the store (0 bytes); set_signs() gives the layer its bits, pack() keeps
// them and unpack() throws. Such a layer holds one copy of its bits: set_tiled(true) moves them into the
// tiled layout and set_tiled(false) moves them back (TiledSigns::to_bits is exact).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "../ops/binary_linear.hpp"
#include "../ops/fbi_linear.hpp"
#include "../tensor/bit_tensor.hpp"
#include "../tensor/copy.hpp"
#include "../train/param_store.hpp"

namespace bimamba {

template <class Backend>
class BinaryLinear {
 public:
  void declare(ParamStore<Backend>& store, const std::string& prefix, int64_t in, int64_t out, bool latent = true) {
    in_ = in, out_ = out;
    weight_name_ = prefix + ".weight";
    weight_id_ = latent ? store.declare(weight_name_, {out, in}) : -1;
    scale_id_ = store.declare(prefix + ".wscale", {1, in}, ParamGroup::NoDecay);
    offset_id_ = store.declare(prefix + ".wbias", {1, in}, ParamGroup::NoDecay);
  }
  void bind(ParamStore<Backend>& store) {
    if (latent()) weight_ = store.template param<2>(weight_id_);
    alpha_ = store.template param<2>(scale_id_).template reshape<1>({in_});
    beta_ = store.template param<2>(offset_id_).template reshape<1>({in_});
  }

  // Packs s(W) into sign bits; forward uses them from now on. NaN weights throw (their sign is undefined).
  // Without latent weights: keeps the bits given to set_signs (throws if there are none).
  void pack() {
    if (!latent()) {
      BIMAMBA_CHECK(packed_, "BinaryLinear::pack: '", weight_name_, "' has no latent weights and no signs (set_signs)");
      return;
    }
    auto w = to_host(weight_);
    signs_ = to<Backend>(pack_signs<uint32_t>(w.cview()));
    packed_ = true;
  }
  // Back to the latent path (the bits are dropped). Throws without latent weights.
  void unpack() {
    BIMAMBA_CHECK(latent(), "BinaryLinear::unpack: '", weight_name_, "' was loaded inference-only (no latent weights)");
    signs_ = BitTensor<uint32_t, Backend>();
    tiled_ = TiledSigns();
    packed_ = false;
  }
  bool packed() const { return packed_; }
  bool latent() const { return weight_id_ >= 0; }

  // The sign bits (out, in) of an inference-only layer (or, on a latent layer, bits to run on until the
  // next pack()); the layer is packed from now on.
  void set_signs(BitTensor<uint32_t, Backend> bits) {
    BIMAMBA_CHECK(bits.rows() == out_ && bits.cols() == in_, "BinaryLinear::set_signs: '", weight_name_, "' needs (",
                  out_, ", ", in_, ") signs, got (", bits.rows(), ", ", bits.cols(), ")");
    signs_ = std::move(bits);
    packed_ = true;
    if constexpr (std::is_same_v<Backend, Host>) {
      if (tiled()) set_tiled(true);
    }
  }

  // Host only; needs pack() first. The tiled copy is rebuilt from the current bits.
  void set_tiled(bool on) {
    static_assert(std::is_same_v<Backend, Host>, "TiledSigns is a Host layout");
    BIMAMBA_CHECK(!on || packed_, "BinaryLinear::set_tiled: pack() first");
    if (!latent() && tiled() && signs_.data() == nullptr) {  // the bits live in the tiles: move them back
      BitTensor<uint32_t, Host> bits(out_, in_);
      tiled_.to_bits(bits.view());
      signs_ = std::move(bits);
    }
    tiled_ = on ? TiledSigns(signs_.cview()) : TiledSigns();
    if (on && !latent()) signs_ = BitTensor<uint32_t, Backend>();  // one copy of the bits
  }
  bool tiled() const { return tiled_.data() != nullptr; }

  // x (T, in) -> y (T, out).
  void forward(Context<Backend>& ctx, View<const float, 2, Backend> x, View<float, 2, Backend> y) const {
    if constexpr (std::is_same_v<Backend, Host>) {
      if (tiled()) {
        binary_linear(ctx, x, tiled_, alpha_, beta_, y);
        return;
      }
    }
    if (packed_) {
      binary_linear(ctx, x, signs_.cview(), alpha_, beta_, y);
      return;
    }
    fbi_linear(ctx, x, weight_, alpha_, beta_, y);
  }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  TensorView<float, 2, Backend> weight() const { return weight_; }  // (out, in) latent
  TensorView<float, 1, Backend> alpha() const { return alpha_; }    // (in) wscale
  TensorView<float, 1, Backend> beta() const { return beta_; }      // (in) wbias
  // The standard-layout bits after pack() (empty on a tiled inference-only layer: its bits are tiled()).
  const BitTensor<uint32_t, Backend>& signs() const { return signs_; }
  const TiledSigns& tiled_signs() const { return tiled_; }
  const std::string& weight_name() const { return weight_name_; }
  // Bytes of the sign bits held (standard layout + tiles).
  int64_t sign_bytes() const {
    return int64_t(signs_.rows() * signs_.words_per_row() * int64_t(sizeof(uint32_t))) + int64_t(tiled_.storage_bytes());
  }
  int weight_id() const { return weight_id_; }
  int scale_id() const { return scale_id_; }
  int offset_id() const { return offset_id_; }

 private:
  int64_t in_ = 0, out_ = 0;
  std::string weight_name_;  // "<prefix>.weight"
  int weight_id_ = -1, scale_id_ = -1, offset_id_ = -1;  // weight_id_ -1: inference-only (no latent)
  TensorView<float, 2, Backend> weight_;
  TensorView<float, 1, Backend> alpha_, beta_;
  BitTensor<uint32_t, Backend> signs_;  // (out, in) after pack()
  TiledSigns tiled_;                    // the same bits for the shuffle kernel after set_tiled(true) (Host)
  bool packed_ = false;
};

}  // namespace bimamba
