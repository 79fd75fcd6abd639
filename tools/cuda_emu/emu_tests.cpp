// The CUDA CPU emulator's tests (tools/cuda_emu/README.md), run by tools/cuda_emu/run.sh:
//   EmuOps.*       the library's Cuda ops, their kernels emulated on the CPU, against the Host ops on the same random
//                  inputs at small odd shapes, with the tolerances of tests/ops_cuda/device_matches_host.cu and
//                  tests/train_cuda/backward_ops.cu (whose call patterns these follow)
//                  (and every other op whose kernels need no inline PTX: see the README)
//   EmuModel.*     whole models (tests/data's tiny Mamba-2, Mamba-1, Bi-Mamba-2): training forward and backward,
//                  device gradients against the host's (training.cu's ModelGradientsMatchHost)
//   EmuAdamW.*     the AdamW step, gradient norm and non-finite search (train/cuda/adamw.cuh, grad_utils.cuh), as
//                  tests/train_cuda/training.cu
//   EmuSelfCheck.* the emulator itself: it must catch divergent barriers, mismatched warp collectives, reads of
//                  unwritten shared memory, writes outside an allocation, bad launches and bad cuBLAS arguments
// This file is CUDA C++ (kernels, <<< >>>, __shared__): run.sh passes it through transform.py like the headers.
#include <gtest/gtest.h>

#include <bimamba/cuda.hpp>
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/load.hpp>
#include <bimamba/ops/add.hpp>
#include <bimamba/ops/apply_mask.hpp>
#include <bimamba/ops/causal_conv1d.hpp>
#include <bimamba/ops/causal_conv1d_backward.hpp>
#include <bimamba/ops/dense_gemv.hpp>
#include <bimamba/ops/dt_softplus.hpp>
#include <bimamba/ops/dt_softplus_backward.hpp>
#include <bimamba/ops/embedding.hpp>
#include <bimamba/ops/embedding_backward.hpp>
#include <bimamba/ops/fbi_linear.hpp>
#include <bimamba/ops/fbi_weight.hpp>
#include <bimamba/ops/fbi_linear_backward.hpp>
#include <bimamba/ops/gated_rms_norm.hpp>
#include <bimamba/ops/gated_rms_norm_backward.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/ops/linear_backward.hpp>
#include <bimamba/ops/mamba2_decode.hpp>
#include <bimamba/ops/neg_exp.hpp>
#include <bimamba/ops/neg_exp_backward.hpp>
#include <bimamba/ops/rms_norm.hpp>
#include <bimamba/ops/rms_norm_backward.hpp>
#include <bimamba/ops/selective_scan.hpp>
#include <bimamba/ops/selective_scan_backward.hpp>
#include <bimamba/ops/ssd_scan.hpp>
#include <bimamba/ops/ssd_scan_backward.hpp>
#include <bimamba/ops/ssd_step.hpp>
#include <bimamba/train/adamw.hpp>
#include <bimamba/train/grad_utils.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/model_grad.hpp>

#include <device_support.hpp>
#include <limits>
#include <string>
#include <utility>

namespace bimamba::test {
namespace {

constexpr double kFwdTol = 1e-5;  // device_matches_host.cu
constexpr double kTol = 1e-4;     // backward_ops.cu
constexpr GradientMode kModes[] = {GradientMode::Overwrite, GradientMode::Accumulate};

const char* name(GradientMode mode) { return mode == GradientMode::Overwrite ? "Overwrite" : "Accumulate"; }

// A gradient output on both backends, starting from the same random values (backward_ops.cu).
template <int Rank>
struct GradPair {
  Tensor<float, Rank, Host> host;
  Tensor<float, Rank, Cuda> dev;
  GradPair(const Extents<Rank>& shape, uint64_t seed)
      : host(rand_host<Rank>(shape, seed, -0.5f, 0.5f)), dev(to<Cuda>(host)) {}
  double rel_l2() const { return rel(dev, host); }
};

using EmuOps = DeviceVsHost;

TEST_F(EmuOps, CausalConv1dPrefillStepAndStates) {
  // L = 70: three 32-token tiles, the last of 6; C = 150: two 128-channel blocks; x a strided slice.
  const int64_t B = 2, L = 70, C = 150, K = 4, width = C + 5;
  auto wide = rand_host<3>({B, L, width}, 30);
  auto w = rand_host<2>({C, K}, 31);
  auto bias = rand_host<1>({C}, 32);
  auto init = rand_host<3>({B, C, K}, 33);
  auto wided = to<Cuda>(wide);
  auto wd = to<Cuda>(w);
  auto biasd = to<Cuda>(bias);
  auto initd = to<Cuda>(init);
  for (int64_t len : {int64_t(2), int64_t(11), L}) {
    auto x = wide.cview().narrow(2, 3, C).narrow(1, 0, len);
    auto xd = wided.cview().narrow(2, 3, C).narrow(1, 0, len);
    Tensor<float, 3, Host> y({B, len, C}), fin({B, C, K});
    Tensor<float, 3, Cuda> yd({B, len, C}), find({B, C, K});
    causal_conv1d(host_, x, w, bias, y, Activation::Silu, init, fin);
    causal_conv1d(*dev_, xd, wd, biasd, yd, Activation::Silu, initd, find);
    EXPECT_LT(rel(yd, y), kFwdTol) << "L=" << len;
    EXPECT_EQ(rel(find, fin), 0.0) << "L=" << len;
    auto inplace = to<Cuda>(init);  // the state continued in place
    causal_conv1d(*dev_, xd, wd, biasd, yd, Activation::Silu, inplace, inplace);
    EXPECT_EQ(rel(inplace, fin), 0.0) << "L=" << len;
  }
  auto xs = rand_host<2>({B, C}, 34);
  auto state = rand_host<3>({B, C, K}, 35);
  auto stated = to<Cuda>(state);
  Tensor<float, 2, Host> ys({B, C});
  Tensor<float, 2, Cuda> ysd({B, C});
  causal_conv1d_step(host_, xs, w, {}, state, ys, Activation::None);
  causal_conv1d_step(*dev_, to<Cuda>(xs), wd, {}, stated, ysd, Activation::None);
  EXPECT_LT(rel(ysd, ys), kFwdTol);
  EXPECT_EQ(rel(stated, state), 0.0);
}

TEST_F(EmuOps, CausalConv1dBackward) {
  // K = 20 needs more than the default 48 KB of shared memory (the opt-in path); L = 3 < K; L = 130: five tiles.
  for (int64_t K : {4, 20}) {
    for (auto [L, C] : {std::pair<int64_t, int64_t>{3, 13}, {130, 150}}) {
      const int64_t B = 2, R = C + 7;
      auto wide = rand_host<3>({B, L, R}, 1, -2, 2);  // x is the column range [3, 3 + C)
      auto w = rand_host<2>({C, K}, 2);
      auto bias = rand_host<1>({C}, 3);
      auto dy = rand_host<3>({B, L, C}, 4);
      auto wide_d = to<Cuda>(wide);
      for (GradientMode mode : kModes) {
        GradPair<3> dx({B, L, R}, 10);
        GradPair<2> dw({C, K}, 11);
        GradPair<1> db({C}, 12);
        causal_conv1d_backward(host_, wide.cview().narrow(2, 3, C), w, bias, dy, dx.host.view().narrow(2, 3, C),
                               dw.host, db.host, mode);
        causal_conv1d_backward(*dev_, wide_d.cview().narrow(2, 3, C), to<Cuda>(w), to<Cuda>(bias), to<Cuda>(dy),
                               dx.dev.view().narrow(2, 3, C), dw.dev, db.dev, mode);
        const std::string what = "K=" + std::to_string(K) + " L=" + std::to_string(L) + " C=" + std::to_string(C) +
                                 " " + name(mode);
        EXPECT_LT(dx.rel_l2(), kTol) << "dx " << what;
        EXPECT_LT(dw.rel_l2(), kTol) << "dw " << what;
        EXPECT_LT(db.rel_l2(), kTol) << "dbias " << what;
      }
    }
  }
}

TEST_F(EmuOps, RmsNormForwardAndBackward) {
  const int64_t T = 13, D = 1031;
  auto x = rand_host<2>({T, D}, 1, -3, 3);
  auto res = rand_host<2>({T, D}, 2);
  auto w = rand_host<1>({D}, 3, 0.5f, 1.5f);
  auto dy = rand_host<2>({T, D}, 4);
  auto xd = to<Cuda>(x);
  auto wd = to<Cuda>(w);
  Tensor<float, 2, Host> y({T, D});
  Tensor<float, 2, Cuda> yd({T, D});
  rms_norm(host_, x, w, 1e-5f, y);
  rms_norm(*dev_, xd, wd, 1e-5f, yd);
  EXPECT_LT(rel(yd, y), kFwdTol);
  auto resd = to<Cuda>(res);
  add_rms_norm(host_, res, x, w, 1e-5f, y);
  add_rms_norm(*dev_, resd, xd, wd, 1e-5f, yd);
  EXPECT_LT(rel(resd, res), kFwdTol);
  EXPECT_LT(rel(yd, y), kFwdTol);
  for (GradientMode mode : kModes) {
    GradPair<2> dx({T, D}, 10);
    GradPair<1> dw({D}, 11);
    rms_norm_backward(host_, x, w, 1e-5f, dy, dx.host, dw.host, mode);
    rms_norm_backward(*dev_, xd, wd, 1e-5f, to<Cuda>(dy), dx.dev, dw.dev, mode);
    EXPECT_LT(dx.rel_l2(), kTol) << "rms_norm dx " << name(mode);
    EXPECT_LT(dw.rel_l2(), kTol) << "rms_norm dweight " << name(mode);
  }
  GradPair<1> dw_only({D}, 12);  // dx absent: the rows kernel returns before its second loop
  rms_norm_backward(host_, x, w, 1e-5f, dy, {}, dw_only.host, GradientMode::Overwrite);
  rms_norm_backward(*dev_, xd, wd, 1e-5f, to<Cuda>(dy), {}, dw_only.dev, GradientMode::Overwrite);
  EXPECT_LT(dw_only.rel_l2(), kTol);
}

TEST_F(EmuOps, GatedRmsNormForwardAndBackward) {
  // E = 771, G = 3: groups of 257 (not a warp multiple); T = 37 > 16: three row tiles, the last of 5;
  // S = 2500 > 8 x 512 / ...: the columns past the registers (kGateCols) in the wide case.
  for (auto [T, E, G] : {std::array<int64_t, 3>{37, 771, 3}, {5, 4100, 1}}) {
    auto y = rand_host<2>({T, E}, 4, -2, 2);
    auto z = rand_host<2>({T, E}, 5, -3, 3);
    auto gw = rand_host<1>({E}, 6, 0.5f, 1.5f);
    auto dout = rand_host<2>({T, E}, 7);
    auto yd = to<Cuda>(y);
    auto zd = to<Cuda>(z);
    auto gwd = to<Cuda>(gw);
    auto doutd = to<Cuda>(dout);
    const std::string shape = "T=" + std::to_string(T) + " E=" + std::to_string(E) + " G=" + std::to_string(G);
    Tensor<float, 2, Host> out({T, E});
    Tensor<float, 2, Cuda> outd({T, E});
    gated_rms_norm(host_, y, z, gw, G, 1e-5f, out);
    gated_rms_norm(*dev_, yd, zd, gwd, G, 1e-5f, outd);
    EXPECT_LT(rel(outd, out), kFwdTol) << shape;
    for (GradientMode mode : kModes) {
      GradPair<2> gdy({T, E}, 20), gdz({T, E}, 21);
      GradPair<1> gdw({E}, 22);
      gated_rms_norm_backward(host_, y, z, gw, G, 1e-5f, dout, gdy.host, gdz.host, gdw.host, mode);
      gated_rms_norm_backward(*dev_, yd, zd, gwd, G, 1e-5f, doutd, gdy.dev, gdz.dev, gdw.dev, mode);
      EXPECT_LT(gdy.rel_l2(), kTol) << "gated dy " << shape << " " << name(mode);
      EXPECT_LT(gdz.rel_l2(), kTol) << "gated dz " << shape << " " << name(mode);
      EXPECT_LT(gdw.rel_l2(), kTol) << "gated dweight " << shape << " " << name(mode);
    }
  }
  // A strided z (a column range of in_proj's output), only dz requested.
  const int64_t T = 37, E = 771, G = 3, R = E + 5;
  auto y = rand_host<2>({T, E}, 4, -2, 2);
  auto gw = rand_host<1>({E}, 6, 0.5f, 1.5f);
  auto dout = rand_host<2>({T, E}, 7);
  auto wide = rand_host<2>({T, R}, 30, -3, 3);
  GradPair<2> wide_dz({T, R}, 31);
  auto wide_d = to<Cuda>(wide);
  gated_rms_norm_backward(host_, y, wide.cview().narrow(1, 2, E), gw, G, 1e-5f, dout, {},
                          wide_dz.host.view().narrow(1, 2, E), {}, GradientMode::Accumulate);
  gated_rms_norm_backward(*dev_, to<Cuda>(y), wide_d.cview().narrow(1, 2, E), to<Cuda>(gw), G, 1e-5f, to<Cuda>(dout),
                          {}, wide_dz.dev.view().narrow(1, 2, E), {}, GradientMode::Accumulate);
  EXPECT_LT(wide_dz.rel_l2(), kTol);
}

struct Ssd {
  int64_t B, L, H, P, G, N;
  Tensor<float, 4, Host> x, Bm, Cm, init;
  Tensor<float, 3, Host> dt;
  Tensor<float, 1, Host> A, D;
  Ssd(int64_t B_, int64_t L_, int64_t H_, int64_t P_, int64_t G_, int64_t N_, uint64_t seed)
      : B(B_), L(L_), H(H_), P(P_), G(G_), N(N_), x(rand_host<4>({B, L, H, P}, seed)),
        Bm(rand_host<4>({B, L, G, N}, seed + 1)), Cm(rand_host<4>({B, L, G, N}, seed + 2)),
        init(rand_host<4>({B, H, P, N}, seed + 3)), dt(rand_host<3>({B, L, H}, seed + 4, 0.001f, 0.3f)),
        A(rand_host<1>({H}, seed + 5, -8.0f, -0.5f)), D(rand_host<1>({H}, seed + 6)) {}
};

TEST_F(EmuOps, SsdScanForward) {
  // (B, L, H, P, G, N): odd with groups; one chunk shorter than a tile; chunk sizes 1 .. above L.
  const Ssd cases[] = {Ssd(2, 45, 6, 5, 3, 7, 40), Ssd(1, 3, 2, 3, 1, 2, 50), Ssd(1, 150, 2, 9, 1, 11, 60),
                       Ssd(1, 140, 2, 64, 1, 128, 70)};  // the Bi-Mamba head shape over two 128-token chunks
  for (const Ssd& c : cases) {
    auto xd = to<Cuda>(c.x);
    auto dtd = to<Cuda>(c.dt);
    auto Ad = to<Cuda>(c.A);
    auto Bd = to<Cuda>(c.Bm);
    auto Cd = to<Cuda>(c.Cm);
    auto Dd = to<Cuda>(c.D);
    auto initd = to<Cuda>(c.init);
    for (int64_t chunk : {1, 16, 100, 256}) {
      Tensor<float, 4, Host> y({c.B, c.L, c.H, c.P}), fin({c.B, c.H, c.P, c.N});
      Tensor<float, 4, Cuda> yd({c.B, c.L, c.H, c.P}), find({c.B, c.H, c.P, c.N});
      ssd_scan(host_, c.x, c.dt, c.A, c.Bm, c.Cm, c.D, chunk, y, c.init, fin);
      ssd_scan(*dev_, xd, dtd, Ad, Bd, Cd, Dd, chunk, yd, initd, find);
      EXPECT_LT(rel(yd, y), kFwdTol) << "L=" << c.L << " chunk=" << chunk;
      EXPECT_LT(rel(find, fin), kFwdTol) << "L=" << c.L << " chunk=" << chunk;
    }
    Tensor<float, 4, Host> y({c.B, c.L, c.H, c.P}), fin({c.B, c.H, c.P, c.N});
    Tensor<float, 4, Cuda> yd({c.B, c.L, c.H, c.P});
    auto state = to<Cuda>(c.init);  // without D; the state continued in place
    ssd_scan(host_, c.x, c.dt, c.A, c.Bm, c.Cm, {}, 64, y, c.init, fin);
    ssd_scan(*dev_, xd, dtd, Ad, Bd, Cd, {}, 64, yd, state, state);
    EXPECT_LT(rel(yd, y), kFwdTol);
    EXPECT_LT(rel(state, fin), kFwdTol);
  }
}

// The model's layout: x, B, C column ranges of one buffer, y with a padded head pitch; fp32 and TF32.
TEST_F(EmuOps, SsdScanForwardOnSlicesAndInTf32) {
  const int64_t B = 2, L = 70, H = 4, P = 6, G = 2, N = 5, W = H * P + 2 * G * N + 5, Pp = P + 3;
  const Ssd c(B, L, H, P, G, N, 70);
  auto wide = rand_host<3>({B, L, W}, 80);
  auto wided = to<Cuda>(wide);
  const auto slices = [&](auto& buf) {
    using V = TensorView<const float, 4, typename std::decay_t<decltype(buf)>::backend_type>;
    const float* base = buf.data() + 2;
    return std::make_tuple(V(base, {B, L, H, P}, {L * W, W, P, 1}), V(base + H * P, {B, L, G, N}, {L * W, W, N, 1}),
                           V(base + H * P + G * N, {B, L, G, N}, {L * W, W, N, 1}));
  };
  const auto [x, Bm, Cm] = slices(wide);
  const auto [xd, Bd, Cd] = slices(wided);
  const Extents<4> y_shape{B, L, H, P}, y_strides{L * H * Pp, H * Pp, Pp, 1};
  Tensor<float, 4, Host> y({B, L, H, Pp}), fin({B, H, P, N});
  ssd_scan(host_, x, c.dt, c.A, Bm, Cm, c.D, 64, TensorView<float, 4, Host>(y.data(), y_shape, y_strides), c.init, fin);
  auto dtd = to<Cuda>(c.dt);
  auto Ad = to<Cuda>(c.A);
  auto Dd = to<Cuda>(c.D);
  auto initd = to<Cuda>(c.init);
  const std::pair<GemmPrecision, double> precisions[] = {{GemmPrecision::Fp32, kFwdTol}, {GemmPrecision::Tf32, 5e-3}};
  for (const auto& [precision, tol] : precisions) {
    dev_->set_gemm_precision(precision);
    Tensor<float, 4, Cuda> yd({B, L, H, Pp}), find({B, H, P, N});
    ssd_scan(*dev_, xd, dtd, Ad, Bd, Cd, Dd, 64, TensorView<float, 4, Cuda>(yd.data(), y_shape, y_strides), initd,
             find);
    EXPECT_LT(rel(yd, y), tol) << to_string(precision);
    EXPECT_LT(rel(find, fin), tol) << to_string(precision);
    if (precision == GemmPrecision::Tf32) {
      EXPECT_GT(rel(yd, y), 1e-6) << "the TF32 rounding was not applied";
    }
  }
}

// backward_ops.cu's check_ssd: x, B, C column ranges of one (B, L, C) tensor, both gradient modes.
void check_ssd(Context<Host>& host, Context<Cuda>& dev, int64_t B, int64_t L, int64_t H, int64_t P, int64_t G,
               int64_t N, bool with_D, double tol = kTol) {
  const int64_t E = H * P, C = E + 2 * G * N;
  auto xbc = rand_host<3>({B, L, C}, 1);
  auto dt = rand_host<3>({B, L, H}, 2, 0.01f, 0.5f);
  auto A = rand_host<1>({H}, 3, -2.0f, -0.1f);
  auto D = rand_host<1>({H}, 4);
  auto dy = rand_host<4>({B, L, H, P}, 5);
  auto xbc_d = to<Cuda>(xbc);
  auto dt_d = to<Cuda>(dt);
  auto A_d = to<Cuda>(A);
  auto D_d = to<Cuda>(D);
  auto dy_d = to<Cuda>(dy);
  const float* hb = xbc.data();
  const float* db = xbc_d.data();
  TensorView<const float, 4, Host> xh(hb, {B, L, H, P}, {L * C, C, P, 1}), Bh(hb + E, {B, L, G, N}, {L * C, C, N, 1}),
      Ch(hb + E + G * N, {B, L, G, N}, {L * C, C, N, 1});
  TensorView<const float, 4, Cuda> xd(db, {B, L, H, P}, {L * C, C, P, 1}), Bd(db + E, {B, L, G, N}, {L * C, C, N, 1}),
      Cd(db + E + G * N, {B, L, G, N}, {L * C, C, N, 1});
  const std::string shape = "ssd (B, L, H, P, G, N) = (" + std::to_string(B) + ", " + std::to_string(L) + ", " +
                            std::to_string(H) + ", " + std::to_string(P) + ", " + std::to_string(G) + ", " +
                            std::to_string(N) + (with_D ? ") " : ") without D ");
  for (GradientMode mode : kModes) {
    GradPair<4> dx({B, L, H, P}, 10), dB({B, L, G, N}, 11), dC({B, L, G, N}, 12);
    GradPair<3> ddt({B, L, H}, 13);
    GradPair<1> dA({H}, 14), dD({H}, 15);
    ssd_scan_backward(host, xh, dt, A, Bh, Ch, with_D ? D.cview() : TensorView<const float, 1, Host>{}, dy, dx.host,
                      ddt.host, dA.host, dB.host, dC.host, with_D ? dD.host.view() : TensorView<float, 1, Host>{},
                      mode);
    ssd_scan_backward(dev, xd, dt_d.cview(), A_d.cview(), Bd, Cd,
                      with_D ? D_d.cview() : TensorView<const float, 1, Cuda>{}, dy_d.cview(), dx.dev.view(),
                      ddt.dev.view(), dA.dev.view(), dB.dev.view(), dC.dev.view(),
                      with_D ? dD.dev.view() : TensorView<float, 1, Cuda>{}, mode);
    const std::string what = shape + name(mode);
    EXPECT_LT(dx.rel_l2(), tol) << what << " dx";
    EXPECT_LT(ddt.rel_l2(), tol) << what << " ddt";
    EXPECT_LT(dA.rel_l2(), tol) << what << " dA";
    EXPECT_LT(dB.rel_l2(), tol) << what << " dB";
    EXPECT_LT(dC.rel_l2(), tol) << what << " dC";
    if (with_D) EXPECT_LT(dD.rel_l2(), tol) << what << " dD";
    else EXPECT_EQ(dD.rel_l2(), 0.0) << what << " dD was not requested: untouched";
  }
}

// Around the backward's 64-token chunks: one partial chunk, exactly one, one token more, several with a partial last
// one; groups shared by several heads (G > 1), several batch rows, D present or not.
TEST_F(EmuOps, SsdScanBackward) {
  check_ssd(host_, *dev_, 2, 7, 4, 3, 2, 5, true);
  check_ssd(host_, *dev_, 3, 37, 6, 5, 3, 7, false);
  check_ssd(host_, *dev_, 1, 1, 2, 3, 1, 4, true);     // L = 1
  check_ssd(host_, *dev_, 1, 63, 2, 5, 1, 7, false);   // L = chunk - 1
  check_ssd(host_, *dev_, 1, 64, 2, 5, 1, 7, true);    // L = chunk
  check_ssd(host_, *dev_, 1, 65, 2, 5, 1, 7, true);    // a one-token last chunk
  check_ssd(host_, *dev_, 2, 131, 2, 5, 1, 7, false);  // 2 chunks + 3 tokens
  check_ssd(host_, *dev_, 3, 70, 4, 3, 2, 9, true);    // G = 2 with 4 heads, B = 3
  check_ssd(host_, *dev_, 1, 40, 2, 37, 1, 33, true);  // P, N above a warp (the lane loops take two rounds)
  check_ssd(host_, *dev_, 2, 67, 4, 64, 1, 128, true);  // the real head shape: P = 64, N = 128
  check_ssd(host_, *dev_, 1, 70, 2, 130, 1, 9, true);   // P over two 64-column slabs of the chunk kernel, and a part
}

TEST_F(EmuOps, SsdScanBackwardInTf32) {
  dev_->set_gemm_precision(GemmPrecision::Tf32);
  check_ssd(host_, *dev_, 2, 131, 4, 6, 2, 9, true, 5e-3);
  dev_->set_gemm_precision(GemmPrecision::Fp32);
}

// Random inputs of a projection at an odd shape on both backends (backward_ops.cu).
struct ProjectionInputs {
  int64_t T = 37, in = 45, out = 29;
  Tensor<float, 2, Host> x = rand_host<2>({T, in}, 1), W = rand_host<2>({out, in}, 2), dy = rand_host<2>({T, out}, 3);
  Tensor<float, 1, Host> alpha = rand_host<1>({in}, 4, 0.01f, 1.0f), beta = rand_host<1>({in}, 5, -0.2f, 0.2f);
  Tensor<float, 1, Host> bias = rand_host<1>({out}, 6);
  Tensor<float, 2, Cuda> xd = to<Cuda>(x), Wd = to<Cuda>(W), dyd = to<Cuda>(dy);
  Tensor<float, 1, Cuda> ad = to<Cuda>(alpha), bd = to<Cuda>(beta), biasd = to<Cuda>(bias);
};

TEST_F(EmuOps, LinearAndFbiLinear) {
  ProjectionInputs p;
  const int64_t T = p.T, in = p.in, out = p.out;
  Tensor<float, 2, Host> y({T, out});
  Tensor<float, 2, Cuda> yd({T, out});
  linear(host_, p.x, p.W, p.bias, y);
  linear(*dev_, p.xd, p.Wd, p.biasd, yd);
  EXPECT_LT(rel(yd, y), kFwdTol) << "linear y";
  fbi_linear(host_, p.x, p.W, p.alpha, p.beta, y);
  fbi_linear(*dev_, p.xd, p.Wd, p.ad, p.bd, yd);
  EXPECT_LT(rel(yd, y), kFwdTol) << "fbi_linear y";
  for (GradientMode mode : kModes) {
    GradPair<2> dx({T, in}, 10), dW({out, in}, 11);
    GradPair<1> db({out}, 12);
    linear_backward(host_, p.x, p.W, p.dy, dx.host, dW.host, db.host, mode);
    linear_backward(*dev_, p.xd, p.Wd, p.dyd, dx.dev, dW.dev, db.dev, mode);
    EXPECT_LT(dx.rel_l2(), kTol) << "linear dx " << name(mode);
    EXPECT_LT(dW.rel_l2(), kTol) << "linear dW " << name(mode);
    EXPECT_LT(db.rel_l2(), kTol) << "linear dbias " << name(mode);
    GradPair<2> fx({T, in}, 20), fW({out, in}, 21);
    GradPair<1> fa({in}, 22), fb({in}, 23);
    fbi_linear_backward(host_, p.x, p.W, p.alpha, p.beta, p.dy, fx.host, fW.host, fa.host, fb.host, mode);
    fbi_linear_backward(*dev_, p.xd, p.Wd, p.ad, p.bd, p.dyd, fx.dev, fW.dev, fa.dev, fb.dev, mode);
    EXPECT_LT(fx.rel_l2(), kTol) << "fbi dx " << name(mode);
    EXPECT_LT(fW.rel_l2(), kTol) << "fbi dW " << name(mode);
    EXPECT_LT(fa.rel_l2(), kTol) << "fbi dalpha " << name(mode);
    EXPECT_LT(fb.rel_l2(), kTol) << "fbi dbeta " << name(mode);
  }
  GradPair<2> dx({T, in}, 30), dW({out, in}, 31);  // only some outputs (the mixer's projection_backward pattern)
  linear_backward(host_, p.x, p.W, p.dy, dx.host, {}, {}, GradientMode::Overwrite);
  linear_backward(*dev_, p.xd, p.Wd, p.dyd, dx.dev, {}, {}, GradientMode::Overwrite);
  linear_backward(host_, p.x, p.W, p.dy, {}, dW.host, {}, GradientMode::Accumulate);
  linear_backward(*dev_, p.xd, p.Wd, p.dyd, {}, dW.dev, {}, GradientMode::Accumulate);
  EXPECT_LT(dx.rel_l2(), kTol);
  EXPECT_LT(dW.rel_l2(), kTol);
}

// The GEMMs in TF32 and bf16, backward_ops.cu's bounds; in bf16 the FBI layer takes the sign GEMMs of
// fbi_sign_gemm.cuh at the first shape (T <= 2 out) and W_eff at the second (fbi_sign_gemm_pays).
TEST_F(EmuOps, LinearAndFbiLinearInTf32AndBf16) {
  for (const ProjectionInputs& p : {ProjectionInputs{37, 45, 29}, ProjectionInputs{70, 45, 13}}) {
    const int64_t T = p.T, in = p.in, out = p.out;
    for (const auto& [precision, tol] : {std::pair{GemmPrecision::Tf32, 2e-3}, std::pair{GemmPrecision::Bf16, 1e-2}}) {
      dev_->set_gemm_precision(precision);
      const char* pname = to_string(precision);
      Tensor<float, 2, Host> y({T, out});
      Tensor<float, 2, Cuda> yd({T, out});
      linear(host_, p.x, p.W, {}, y);
      linear(*dev_, p.xd, p.Wd, {}, yd);
      EXPECT_LT(rel(yd, y), tol) << "linear y " << pname;
      EXPECT_GT(rel(yd, y), 1e-6) << "linear y " << pname << ": the reduced precision was not applied";
      fbi_linear(host_, p.x, p.W, p.alpha, p.beta, y);
      fbi_linear(*dev_, p.xd, p.Wd, p.ad, p.bd, yd);
      EXPECT_LT(rel(yd, y), tol) << "fbi_linear y " << pname;
      GradPair<2> dx({T, in}, 10), dW({out, in}, 11);
      linear_backward(host_, p.x, p.W, p.dy, dx.host, dW.host, {}, GradientMode::Overwrite);
      linear_backward(*dev_, p.xd, p.Wd, p.dyd, dx.dev, dW.dev, {}, GradientMode::Overwrite);
      EXPECT_LT(dx.rel_l2(), tol) << "linear dx " << pname;
      EXPECT_LT(dW.rel_l2(), tol) << "linear dW " << pname;
      for (GradientMode mode : kModes) {
        GradPair<2> fx({T, in}, 20), fW({out, in}, 21);
        GradPair<1> fa({in}, 22), fb({in}, 23);
        fbi_linear_backward(host_, p.x, p.W, p.alpha, p.beta, p.dy, fx.host, fW.host, fa.host, fb.host, mode);
        fbi_linear_backward(*dev_, p.xd, p.Wd, p.ad, p.bd, p.dyd, fx.dev, fW.dev, fa.dev, fb.dev, mode);
        EXPECT_LT(fx.rel_l2(), tol) << "fbi dx " << pname << " " << name(mode);
        EXPECT_LT(fW.rel_l2(), tol) << "fbi dW " << pname << " " << name(mode);
        EXPECT_LT(fa.rel_l2(), tol) << "fbi dalpha " << pname << " " << name(mode);
        EXPECT_LT(fb.rel_l2(), tol) << "fbi dbeta " << pname << " " << name(mode);
      }
    }
  }
  dev_->set_gemm_precision(GemmPrecision::Fp32);
}

// ---- the other ops with Cuda kernels (device_matches_host.cu, backward_ops.cu, training.cu at small shapes) ----
TEST_F(EmuOps, ElementwiseOps) {
  const int64_t T = 37, D = 131, H = 13;
  auto x = rand_host<2>({T, D}, 1, -3, 3);
  auto res = rand_host<2>({T, D}, 2);
  auto resd = to<Cuda>(res);
  add(host_, x, res);
  add(*dev_, to<Cuda>(x), resd);
  EXPECT_EQ(rel(resd, res), 0.0);  // one float add per element
  auto m = rand_host<3>({2, 5, D + 3}, 3);
  auto md = to<Cuda>(m);
  std::vector<float> mask_values(10);
  for (size_t i = 0; i < mask_values.size(); ++i) mask_values[i] = float((i * 7) % 3 != 0);
  auto mask = tensor_from<float, 2>(mask_values, {2, 5});
  apply_mask(host_, mask, m.view().narrow(2, 1, D));
  apply_mask(*dev_, to<Cuda>(mask), md.view().narrow(2, 1, D));
  EXPECT_EQ(rel(md, m), 0.0);
  auto dt = rand_host<2>({T, H}, 7, -6, 25);
  auto bias = rand_host<1>({H}, 8);
  Tensor<float, 2, Host> dto({T, H});
  Tensor<float, 2, Cuda> dtod({T, H});
  dt_softplus(host_, dt, bias, 0.001f, 5.0f, dto);
  dt_softplus(*dev_, to<Cuda>(dt), to<Cuda>(bias), 0.001f, 5.0f, dtod);
  EXPECT_LT(rel(dtod, dto), kFwdTol);
  auto alog = rand_host<1>({H}, 9, -2, 3);
  Tensor<float, 1, Host> A({H});
  Tensor<float, 1, Cuda> Ad({H});
  neg_exp(host_, alog, A);
  neg_exp(*dev_, to<Cuda>(alog), Ad);
  EXPECT_LT(rel(Ad, A), kFwdTol);
  auto W = rand_host<2>({29, 45}, 10);
  auto alpha = rand_host<1>({45}, 11, 0.01f, 1);
  auto beta = rand_host<1>({45}, 12);
  Tensor<float, 2, Host> weff({29, 45});
  Tensor<float, 2, Cuda> weffd({29, 45});
  fbi_weight(host_, W, alpha, beta, weff);
  fbi_weight(*dev_, to<Cuda>(W), to<Cuda>(alpha), to<Cuda>(beta), weffd);
  EXPECT_EQ(rel(weffd, weff), 0.0);
  auto dout = rand_host<2>({T, H}, 22);
  for (GradientMode mode : kModes) {
    GradPair<2> ddt({T, H}, 23);
    GradPair<1> dbias({H}, 24);
    dt_softplus_backward(host_, dt, bias, 0.001f, 5.0f, dout, ddt.host, dbias.host, mode);
    dt_softplus_backward(*dev_, to<Cuda>(dt), to<Cuda>(bias), 0.001f, 5.0f, to<Cuda>(dout), ddt.dev, dbias.dev, mode);
    EXPECT_LT(ddt.rel_l2(), kTol) << "dt ddt " << name(mode);
    EXPECT_LT(dbias.rel_l2(), kTol) << "dt dbias " << name(mode);
    auto dA = rand_host<1>({H}, 26);
    GradPair<1> dalog({H}, 27);
    neg_exp_backward(host_, A, dA, dalog.host, mode);
    neg_exp_backward(*dev_, to<Cuda>(A), to<Cuda>(dA), dalog.dev, mode);
    EXPECT_LT(dalog.rel_l2(), kTol) << "neg_exp " << name(mode);
  }
}

TEST_F(EmuOps, EmbeddingForwardAndBackward) {
  const int64_t V = 101, D = 67, B = 3, L = 5;
  auto table = rand_host<2>({V, D}, 20);
  std::vector<int32_t> ids(size_t(B * L));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7 + 3) % 11);  // ids repeat
  auto idh = tensor_from<int32_t, 2>(ids, {B, L});
  Tensor<float, 3, Host> e({B, L, D});
  Tensor<float, 3, Cuda> ed({B, L, D});
  embedding(host_, idh, table, e);
  embedding(*dev_, to<Cuda>(idh), to<Cuda>(table), ed);
  EXPECT_EQ(rel(ed, e), 0.0);
  auto dout = rand_host<3>({B, L, D}, 1);
  for (GradientMode mode : kModes) {
    GradPair<2> dE({V, D}, 2);
    embedding_backward(host_, idh, dout, dE.host, mode);
    embedding_backward(*dev_, to<Cuda>(idh), to<Cuda>(dout), dE.dev, mode);
    EXPECT_EQ(dE.rel_l2(), 0.0) << "embedding " << name(mode);
  }
  ids[7] = int32_t(V);
  try {
    embedding(*dev_, to<Cuda>(tensor_from<int32_t, 2>(ids, {B, L})), to<Cuda>(table), ed);
    ADD_FAILURE() << "id " << V << " accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("token id 101 at (1, 2)"), std::string::npos) << err.what();
  }
}

TEST_F(EmuOps, DenseGemvOnBf16Weights) {
  for (auto [T, D, V] : {std::array<int64_t, 3>{3, 77, 301}, {1, 260, 99}}) {
    auto x = rand_host<2>({T, D}, 30 + uint64_t(T));
    auto W = rand_host<2>({V, D}, 31);
    Tensor<bfloat16, 2, Host> Wb({V, D});
    for (int64_t i = 0; i < Wb.numel(); ++i) Wb.data()[i] = bfloat16(W.data()[i]);
    const auto xd = to<Cuda>(x);
    const auto Wbd = to<Cuda>(Wb);
    Tensor<float, 2, Host> y({T, V});
    Tensor<float, 2, Cuda> yd({T, V});
    dense_gemv(host_, x.cview(), Wb.cview(), y.view());
    dense_gemv(*dev_, xd.cview(), Wbd.cview(), yd.view());
    EXPECT_LT(rel(yd, y), 1e-5) << "T=" << T << " D=" << D;
  }
}

TEST_F(EmuOps, SsdStepAndSelectiveScan) {
  for (auto [H, P, G, N] : {std::array<int64_t, 4>{6, 5, 3, 7}, {4, 70, 2, 132}}) {
    const int64_t B = 3;
    auto x = rand_host<3>({B, H, P}, 70);
    auto Bm = rand_host<3>({B, G, N}, 71);
    auto Cm = rand_host<3>({B, G, N}, 72);
    auto dt = rand_host<2>({B, H}, 73, 0.001f, 0.3f);
    auto A = rand_host<1>({H}, 74, -8, -0.5f);
    auto D = rand_host<1>({H}, 75);
    auto state = rand_host<4>({B, H, P, N}, 76);
    auto stated = to<Cuda>(state);
    Tensor<float, 3, Host> y({B, H, P});
    Tensor<float, 3, Cuda> yd({B, H, P});
    ssd_step(host_, x, dt, A, Bm, Cm, D, state, y);
    ssd_step(*dev_, to<Cuda>(x), to<Cuda>(dt), to<Cuda>(A), to<Cuda>(Bm), to<Cuda>(Cm), to<Cuda>(D), stated, yd);
    EXPECT_LT(rel(yd, y), kFwdTol) << "H=" << H;
    EXPECT_LT(rel(stated, state), kFwdTol) << "H=" << H;
  }
  const int64_t B = 2, L = 23, E = 45, N = 16;
  auto x = rand_host<3>({B, L, E}, 80);
  auto dt = rand_host<3>({B, L, E}, 81, 0.001f, 0.3f);
  auto z = rand_host<3>({B, L, E}, 82);
  auto A = rand_host<2>({E, N}, 83, -8, -0.5f);
  auto Bm = rand_host<3>({B, L, N}, 84);
  auto Cm = rand_host<3>({B, L, N}, 85);
  auto D = rand_host<1>({E}, 86);
  auto init = rand_host<3>({B, E, N}, 87);
  auto Ad = to<Cuda>(A);
  auto Dd = to<Cuda>(D);
  Tensor<float, 3, Host> y({B, L, E}), fin({B, E, N});
  Tensor<float, 3, Cuda> yd({B, L, E}), find({B, E, N});
  selective_scan(host_, x, dt, A, Bm, Cm, D, z, y, init, fin);
  selective_scan(*dev_, to<Cuda>(x), to<Cuda>(dt), Ad, to<Cuda>(Bm), to<Cuda>(Cm), Dd, to<Cuda>(z), yd, to<Cuda>(init),
                 find);
  EXPECT_LT(rel(yd, y), kFwdTol);
  EXPECT_LT(rel(find, fin), kFwdTol);
  auto xs = rand_host<2>({B, E}, 88);
  auto dts = rand_host<2>({B, E}, 89, 0.001f, 0.3f);
  auto bs = rand_host<2>({B, N}, 90);
  auto cs = rand_host<2>({B, N}, 91);
  Tensor<float, 2, Host> ys({B, E});
  Tensor<float, 2, Cuda> ysd({B, E});
  selective_scan_step(host_, xs, dts, A, bs, cs, D, {}, fin, ys);
  selective_scan_step(*dev_, to<Cuda>(xs), to<Cuda>(dts), Ad, to<Cuda>(bs), to<Cuda>(cs), Dd, {}, find, ysd);
  EXPECT_LT(rel(ysd, ys), kFwdTol);
  EXPECT_LT(rel(find, fin), kFwdTol);
}

TEST_F(EmuOps, SelectiveScanBackward) {
  for (auto [B, L, E, N, gated] : {std::tuple<int64_t, int64_t, int64_t, int64_t, bool>{2, 6, 5, 3, true},
                                   {2, 41, 131, 16, true}, {2, 23, 13, 5, false}}) {
    auto x = rand_host<3>({B, L, E}, 1);
    auto dt = rand_host<3>({B, L, E}, 2, 0.01f, 0.5f);
    auto A = rand_host<2>({E, N}, 3, -2.0f, -0.1f);
    auto Bm = rand_host<3>({B, L, N}, 4);
    auto Cm = rand_host<3>({B, L, N}, 5);
    auto D = rand_host<1>({E}, 6);
    auto z = rand_host<3>({B, L, E}, 7, -3, 3);
    auto dy = rand_host<3>({B, L, E}, 8);
    auto Dd = to<Cuda>(D);
    auto zd = to<Cuda>(z);
    for (GradientMode mode : kModes) {
      GradPair<3> dx({B, L, E}, 10), ddt({B, L, E}, 11), dB({B, L, N}, 12), dC({B, L, N}, 13), dz({B, L, E}, 14);
      GradPair<2> dA({E, N}, 15);
      GradPair<1> dD({E}, 16);
      selective_scan_backward(host_, x, dt, A, Bm, Cm, gated ? D.cview() : TensorView<const float, 1, Host>{},
                              gated ? z.cview() : TensorView<const float, 3, Host>{}, dy, dx.host, ddt.host, dA.host,
                              dB.host, dC.host, gated ? dD.host.view() : TensorView<float, 1, Host>{},
                              gated ? dz.host.view() : TensorView<float, 3, Host>{}, mode);
      selective_scan_backward(*dev_, to<Cuda>(x), to<Cuda>(dt), to<Cuda>(A), to<Cuda>(Bm), to<Cuda>(Cm),
                              gated ? Dd.cview() : TensorView<const float, 1, Cuda>{},
                              gated ? zd.cview() : TensorView<const float, 3, Cuda>{}, to<Cuda>(dy), dx.dev, ddt.dev,
                              dA.dev, dB.dev, dC.dev, gated ? dD.dev.view() : TensorView<float, 1, Cuda>{},
                              gated ? dz.dev.view() : TensorView<float, 3, Cuda>{}, mode);
      const std::string what = "selective E=" + std::to_string(E) + " " + name(mode);
      EXPECT_LT(dx.rel_l2(), kTol) << what << " dx";
      EXPECT_LT(ddt.rel_l2(), kTol) << what << " ddt";
      EXPECT_LT(dA.rel_l2(), kTol) << what << " dA";
      EXPECT_LT(dB.rel_l2(), kTol) << what << " dB";
      EXPECT_LT(dC.rel_l2(), kTol) << what << " dC";
      if (gated) {
        EXPECT_LT(dD.rel_l2(), kTol) << what << " dD";
        EXPECT_LT(dz.rel_l2(), kTol) << what << " dz";
      }
    }
  }
}

// The fused decode step, three steps in a row (states carry over; the arrival counters must come back to zero).
TEST_F(EmuOps, FusedMamba2DecodeStepOverSteps) {
  for (bool with_norm : {true, false})
    for (auto [H, P, G, N] : {std::array<int64_t, 4>{6, 5, 2, 7}, {4, 70, 2, 132}}) {
      const int64_t B = 3, K = 4, E = H * P, C = E + 2 * G * N, R = E + C + H;
      auto conv_w = rand_host<2>({C, K}, 100, -0.5f, 0.5f);
      auto conv_b = rand_host<1>({C}, 101);
      auto dt_bias = rand_host<1>({H}, 102, -3.0f, 0.0f);
      auto a_log = rand_host<1>({H}, 103, 0.0f, 2.0f);
      auto d = rand_host<1>({H}, 104, 0.5f, 1.5f);
      auto norm_w = rand_host<1>({E}, 105, 0.5f, 1.5f);
      auto conv = rand_host<3>({B, C, K}, 106);
      auto ssm = rand_host<4>({B, H, P, N}, 107);
      auto convd = to<Cuda>(conv);
      auto ssmd = to<Cuda>(ssm);
      const auto conv_wd = to<Cuda>(conv_w);
      const auto conv_bd = to<Cuda>(conv_b), dt_biasd = to<Cuda>(dt_bias), a_logd = to<Cuda>(a_log);
      const auto dd = to<Cuda>(d), norm_wd = to<Cuda>(norm_w);
      const float eps = 1e-5f, lo = 0.0f, hi = 0.5f;
      const TensorView<const float, 1, Host> nw = with_norm ? norm_w.cview() : TensorView<const float, 1, Host>{};
      const TensorView<const float, 1, Cuda> nwd = with_norm ? norm_wd.cview() : TensorView<const float, 1, Cuda>{};
      const Mamba2DecodeWeights<Host> w{conv_w.cview(), conv_b.cview(), dt_bias.cview(), a_log.cview(), d.cview(),
                                        nw, H, P, G, N, eps, lo, hi};
      const Mamba2DecodeWeights<Cuda> wd{conv_wd.cview(), conv_bd.cview(), dt_biasd.cview(), a_logd.cview(),
                                         dd.cview(), nwd, H, P, G, N, eps, lo, hi};
      Tensor<float, 2, Host> y({B, E});
      Tensor<float, 2, Cuda> yd({B, E});
      for (int step = 0; step < 3; ++step) {
        auto zxbcdt = rand_host<2>({B, R}, 110 + step, -2.0f, 2.0f);
        mamba2_decode_step(host_, w, zxbcdt.cview(), conv.view(), ssm.view(), y.view());
        const auto zxbcdtd = to<Cuda>(zxbcdt);
        mamba2_decode_step(*dev_, wd, zxbcdtd.cview(), convd.view(), ssmd.view(), yd.view());
        EXPECT_LT(rel(yd, y), kFwdTol) << "H=" << H << " step " << step << " norm " << with_norm;
        EXPECT_LT(rel(ssmd, ssm), kFwdTol) << "H=" << H << " step " << step << " norm " << with_norm;
        EXPECT_EQ(to_vector(convd), to_vector(conv)) << "the conv state is only shifted: bit-identical";
      }
    }
}

// Losses (training.cu): expf in float, sums in double on both sides: 1e-6 on the loss, 1e-5 on dlogits.
TEST_F(EmuOps, LossesMatchHost) {
  const int64_t B = 3, L = 7, V = 301, K = 5;
  auto logits = rand_host<3>({B, L, V}, 1, -4, 4);
  auto teacher = rand_host<3>({B, L, V}, 2, -4, 4);
  auto topk_logits = rand_host<3>({B, L, K}, 3, -2, 6);
  std::vector<int32_t> targets(size_t(B * L)), ids(size_t(B * L * K));
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = int32_t((i * 37 + 5) % V);
  targets[4] = -100;  // ignored rows
  targets[11] = -100;
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 13 + 1) % V);
  ids[3] = ids[4];  // a repeated id in one row
  auto th = tensor_from<int32_t, 2>(targets, {B, L});
  auto ih = tensor_from<int32_t, 3>(ids, {B, L, K});
  auto ld = to<Cuda>(logits);
  auto td = to<Cuda>(teacher);
  auto tkd = to<Cuda>(topk_logits);
  auto thd = to<Cuda>(th);
  auto ihd = to<Cuda>(ih);
  for (GradientMode mode : kModes) {
    const LossOptions opts{0.5f, mode};
    auto start = rand_host<3>({B, L, V}, 9, -0.1f, 0.1f);
    Tensor<float, 3, Host> gh = to<Host>(start.cview());
    Tensor<float, 3, Cuda> gd = to<Cuda>(start);
    const double ce_h = cross_entropy_loss(host_, logits, th, gh, opts);
    const double ce_d = cross_entropy_loss(*dev_, ld, thd, gd, opts);
    EXPECT_NEAR(ce_d, ce_h, 1e-6 * ce_h);
    EXPECT_LT(rel(gd, gh), 1e-5) << "CE dlogits " << name(mode);
    const double kd_h = distill_loss(host_, logits, teacher, gh, opts);
    const double kd_d = distill_loss(*dev_, ld, td, gd, opts);
    EXPECT_NEAR(kd_d, kd_h, 1e-6 * kd_h);
    EXPECT_LT(rel(gd, gh), 1e-5) << "dense distillation dlogits " << name(mode);
    const double tk_h = distill_loss(host_, logits, TopKTeacher<Host>{ih, topk_logits}, gh, opts);
    const double tk_d = distill_loss(*dev_, ld, TopKTeacher<Cuda>{ihd, tkd}, gd, opts);
    EXPECT_NEAR(tk_d, tk_h, 1e-6 * tk_h);
    EXPECT_LT(rel(gd, gh), 1e-5) << "top-k distillation dlogits " << name(mode);
  }
}

// ---- whole models (training.cu's ModelGradientsMatchHost): every kernel of a training step, in sequence ---------
TEST(EmuModel, GradientsMatchHost) {
  for (const std::string folder : {"mamba2-tiny", "mamba1-tiny", "bimamba2-tiny"}) {
    Context<Host> host;
    Context<Cuda> dev;
    auto mh = load_model<Host>(host, data_path(folder));
    auto md = load_model<Cuda>(dev, data_path(folder));
    SafetensorsFile ref(data_path(folder + "/reference.safetensors"));
    const HostTensor idt = ref.get("input_ids");
    const auto ids = tensor_from<int32_t, 2>(to_int32(idt), {idt.shape[0], idt.shape[1]});
    auto ph = training_forward(host, mh, ids);
    auto pd = training_forward(dev, md, to<Cuda>(ids).cview());
    const double lh = next_token_loss(host, ph.logits(), ids, ph.dlogits());
    const double ld = next_token_loss(dev, pd.logits(), to<Cuda>(ids).cview(), pd.dlogits());
    EXPECT_NEAR(ld, lh, 1e-5 * lh) << folder;
    training_backward(host, mh, ph, GradientMode::Overwrite);
    training_backward(dev, md, pd, GradientMode::Overwrite);
    const std::vector<float> gh = to_vector(mh.params().grads()), gd = to_vector(md.params().grads());
    for (const auto& e : mh.params().entries()) {
      const std::vector<float> a(gd.begin() + e.offset, gd.begin() + e.offset + e.numel);
      const std::vector<float> b(gh.begin() + e.offset, gh.begin() + e.offset + e.numel);
      EXPECT_LT(relative_l2(a, b), 1e-4) << folder << ": " << e.name;
    }
  }
}

// ---- AdamW (training.cu) ------------------------------------------------------------------------------------
template <class Backend>
ParamStore<Backend> small_store() {
  ParamStore<Backend> s;
  s.declare("a.weight", {7, 13});
  s.declare("a.bias", {13}, ParamGroup::NoDecay);
  s.declare("b.weight", {5, 3});
  s.declare("norm.weight", {17}, ParamGroup::NoDecay);
  s.allocate();
  return s;
}

void fill(TensorView<float, 1, Host> hv, TensorView<float, 1, Cuda> dv, uint64_t seed) {
  auto values = random_floats(size_t(hv.size(0)), seed);
  MemoryOps<Host>::copy_from_host(hv.data(), values.data(), values.size() * sizeof(float));
  MemoryOps<Cuda>::copy_from_host(dv.data(), values.data(), values.size() * sizeof(float));
}

struct AdamWOnBoth {
  AdamWOnBoth() { fill(sh.params(), sd.params(), 1); }
  Context<Host> host;
  Context<Cuda> dev;
  ParamStore<Host> sh = small_store<Host>();
  ParamStore<Cuda> sd = small_store<Cuda>();
  AdamWConfig config{1e-3f, {0.9f, 0.95f}, 1e-8f, 0.1f};
  AdamW<Host> oh{sh, config};
  AdamW<Cuda> od{sd, config};
};

TEST(EmuAdamW, StepClippingAndNonFiniteMatchHost) {
  AdamWOnBoth both;
  auto& [host, dev, sh, sd, config, oh, od] = both;
  for (int step = 0; step < 3; ++step) {
    fill(sh.grads(), sd.grads(), 10 + uint64_t(step));
    const double nh = clip_grad_norm(host, sh, 0.5);
    const double nd = clip_grad_norm(dev, sd, 0.5);
    EXPECT_NEAR(nd, nh, 1e-12 * nh);
    EXPECT_LT(relative_l2(to_vector(sd.grads()), to_vector(sh.grads())), 1e-7);
    ASSERT_TRUE(oh.step(host, 3e-3f));
    ASSERT_TRUE(od.step(dev, 3e-3f));
  }
  EXPECT_LT(relative_l2(to_vector(sd.params()), to_vector(sh.params())), 1e-6);
  EXPECT_LT(relative_l2(to_vector(od.m()), to_vector(oh.m())), 1e-6);
  EXPECT_LT(relative_l2(to_vector(od.v()), to_vector(oh.v())), 1e-6);
  EXPECT_EQ(od.step_count(), 3);
  std::vector<float> g = to_vector(sd.grads());  // the first non-finite gradient is found and named
  const int64_t at = sd.entries()[2].offset + 4;
  g[size_t(at)] = std::numeric_limits<float>::infinity();
  g[size_t(at + 5)] = std::nanf("");
  MemoryOps<Cuda>::copy_from_host(sd.grads().data(), g.data(), g.size() * sizeof(float));
  const auto bad = find_non_finite(dev, sd, sd.grads());
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->name, "b.weight");
  EXPECT_EQ(bad->index, 4);
  EXPECT_THROW(od.step(dev, 3e-3f), NumericError);
  AdamWConfig skip = config;
  skip.non_finite = NonFinitePolicy::SkipStep;
  AdamW<Cuda> os(sd, skip);
  const std::vector<float> before = to_vector(sd.params());
  EXPECT_FALSE(os.step(dev, 3e-3f));
  EXPECT_EQ(to_vector(sd.params()), before);
  const ClippedStep skipped = os.clip_and_step(dev, 3e-3f, 0.5);
  EXPECT_FALSE(skipped.stepped);
  EXPECT_EQ(to_vector(sd.params()), before);
}

TEST(EmuAdamW, ClipAndStepMatchesHostClipThenStep) {
  AdamWOnBoth both;
  auto& [host, dev, sh, sd, config, oh, od] = both;
  for (int step = 0; step < 3; ++step) {
    fill(sh.grads(), sd.grads(), 10 + uint64_t(step));
    const std::vector<float> unscaled = to_vector(sd.grads());
    const double nh = clip_grad_norm(host, sh, 0.5);
    ASSERT_GT(nh, 0.5);
    ASSERT_TRUE(oh.step(host, 3e-3f));
    const ClippedStep s = od.clip_and_step(dev, 3e-3f, 0.5);
    ASSERT_TRUE(s.stepped);
    EXPECT_NEAR(s.grad_norm, nh, 1e-12 * nh);
    EXPECT_EQ(to_vector(sd.grads()), unscaled);
  }
  EXPECT_LT(relative_l2(to_vector(sd.params()), to_vector(sh.params())), 1e-6);
  EXPECT_LT(relative_l2(to_vector(od.m()), to_vector(oh.m())), 1e-6);
  EXPECT_LT(relative_l2(to_vector(od.v()), to_vector(oh.v())), 1e-6);
}

}  // namespace
}  // namespace bimamba::test

// ---- the emulator's own checks: each kernel below has a bug the emulator must report ---------------------------
namespace emu_selfcheck {

// Thread 0 leaves before the barrier the others wait at.
__global__ void early_exit_barrier(float* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Half the warp shuffles with a full mask.
__global__ void half_warp_shuffle(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

// Reads its neighbour's shared value without the barrier that would order it after the write.
__global__ void missing_barrier(float* out) {
  __shared__ float s[64];
  s[threadIdx.x] = float(threadIdx.x);
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// Writes one element past the end of its output.
__global__ void off_by_one(float* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;
}

__global__ void __launch_bounds__(64) bounded(float* out) { out[threadIdx.x] = 1.0f; }

// A block-wide sum through a warp shuffle tree and shared memory, correct: the reference for the cases above.
__global__ void block_sum_ok(const float* in, float* out) {
  __shared__ float warp_sums[32];
  float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) s += warp_sums[w];
    out[blockIdx.x] = s;
  }
}

float* device_floats(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
  return static_cast<float*>(p);
}

TEST(EmuSelfCheck, ACorrectKernelRuns) {
  float* in = device_floats(256);
  float* out = device_floats(2);
  std::vector<float> h(256);
  for (size_t i = 0; i < h.size(); ++i) h[i] = float(i);
  ASSERT_EQ(cudaMemcpy(in, h.data(), 256 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  block_sum_ok<<<2, 128>>>(in, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  float r[2];
  ASSERT_EQ(cudaMemcpy(r, out, sizeof r, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(r[0], 127.0f * 128 / 2);
  EXPECT_EQ(r[1], (128.0f + 255) * 128 / 2);
  cudaFree(in);
  cudaFree(out);
}

TEST(EmuSelfCheck, DivergentBarrierThrows) {
  float* out = device_floats(64);
  try {
    early_exit_barrier<<<1, 64>>>(out);
    ADD_FAILURE() << "not reported";
  } catch (const bimamba_emu::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot all go on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1 thread exited"), std::string::npos) << e.what();
  }
  cudaFree(out);
}

TEST(EmuSelfCheck, ShuffleWithAMaskOfLanesThatDoNotTakePartThrows) {
  float* out = device_floats(32);
  EXPECT_THROW(half_warp_shuffle<<<1, 32>>>(out), bimamba_emu::Error);
  cudaFree(out);
}

TEST(EmuSelfCheck, MissingBarrierReadsPoison) {
  float* out = device_floats(128);
  missing_barrier<<<2, 64>>>(out);  // block 0 runs its threads forward, block 1 in reverse
  std::vector<float> h(128);
  ASSERT_EQ(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  int nan = 0;
  for (float v : h) nan += std::isnan(v);
  EXPECT_GT(nan, 0) << "no thread read unwritten shared memory";
  cudaFree(out);
}

TEST(EmuSelfCheck, WritePastTheEndThrows) {
  float* out = device_floats(100);
  try {
    off_by_one<<<1, 128>>>(out, 100);
    ADD_FAILURE() << "not reported";
  } catch (const bimamba_emu::Error& e) {
    EXPECT_NE(std::string(e.what()).find("past the end"), std::string::npos) << e.what();
  }
  cudaFree(out);
}

TEST(EmuSelfCheck, BadLaunchesFail) {
  float* out = device_floats(1024);
  bounded<<<0, 32>>>(out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  bounded<<<1, 1025>>>(out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  bounded<<<1, 32, 64 << 10>>>(out);  // above 48 KiB without cudaFuncSetAttribute
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_THROW(bounded<<<1, 128>>>(out), bimamba_emu::Error);  // above __launch_bounds__(64)
  std::vector<float> host(4);
  EXPECT_THROW(bounded<<<1, 4>>>(host.data()), bimamba_emu::Error);  // a host pointer
  cudaFree(out);
}

TEST(EmuSelfCheck, CublasChecksItsArguments) {
  cublasHandle_t h;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  float* a = device_floats(12);
  float* c = device_floats(12);
  const float one = 1, zero = 0;
  // C (3, 4) = A (3, 2) B (2, 4): lda must be >= 3.
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 2, a, 2, &zero, c, 3),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, -1, &one, a, 3, a, 2, &zero, c, 3),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 2),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, CUDA_R_32F, 3, a, CUDA_R_16BF, 2, &zero, c,
                         CUDA_R_32F, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 3), CUBLAS_STATUS_SUCCESS);
  // C (4, 4) with ldc 4 needs 16 floats: the allocation has 12.
  EXPECT_THROW(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 2, &one, a, 4, a, 2, &zero, c, 4), bimamba_emu::Error);
  cublasDestroy(h);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &one, a, 3, a, 2, &zero, c, 3),
            CUBLAS_STATUS_NOT_INITIALIZED);
  cudaFree(a);
  cudaFree(c);
}

}  // namespace emu_selfcheck
