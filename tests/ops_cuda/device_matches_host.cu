// Every Cuda op against the Host op on the same random inputs, at odd shapes (nothing a multiple of a warp or
// a tile) and at the real Bi-Mamba shapes where the kernels tile differently (binary_linear, ssd_scan).
//
// Tolerance: relative L2 < 1e-5. Both backends compute in float32 but sum in different orders (tree sums in a
// block vs sequential loops, tiled vs Eigen GEMMs); each sum of n terms differs by at most ~n u |terms| with
// u = 6e-8, i.e. ~1e-6 relative for the reductions here. binary_linear on Cuda quantizes alpha * x to 23 bits
// per row (decode kernel) or per 512-column slice (ops/cuda/binary_linear.cuh): ~1e-7 relative per term, far
// inside the bound as well.
#include <gtest/gtest.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include <bimamba/cuda.hpp>
#include <bimamba/ops/add.hpp>
#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/causal_conv1d.hpp>
#include <bimamba/ops/dense_gemv.hpp>
#include <bimamba/ops/dt_softplus.hpp>
#include <bimamba/ops/embedding.hpp>
#include <bimamba/ops/fbi_weight.hpp>
#include <bimamba/ops/gated_rms_norm.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/ops/mamba2_decode.hpp>
#include <bimamba/ops/neg_exp.hpp>
#include <bimamba/ops/rms_norm.hpp>
#include <bimamba/ops/selective_scan.hpp>
#include <bimamba/ops/ssd_scan.hpp>
#include <bimamba/ops/ssd_step.hpp>

#include <device_support.hpp>

namespace bimamba::test {
namespace {

constexpr double kTol = 1e-5;

using DeviceOps = DeviceVsHost;

// rms_norm, in place too (y is x's memory), and add_rms_norm at (T, D) on both backends.
void check_rms_norms(Context<Host>& host, Context<Cuda>& dev, int64_t T, int64_t D) {
  auto x = rand_host<2>({T, D}, 1, -3, 3);
  auto res = rand_host<2>({T, D}, 2);
  auto w = rand_host<1>({D}, 3, 0.5f, 1.5f);
  auto xd = to<Cuda>(x);
  auto resd = to<Cuda>(res);
  auto wd = to<Cuda>(w);
  Tensor<float, 2, Host> y({T, D});
  Tensor<float, 2, Cuda> yd({T, D});
  rms_norm(host, x, w, 1e-5f, y);
  rms_norm(dev, xd, wd, 1e-5f, yd);
  EXPECT_LT(rel(yd, y), kTol) << "D = " << D;
  auto inplace = to<Cuda>(x);
  rms_norm(dev, inplace, wd, 1e-5f, inplace);
  EXPECT_LT(rel(inplace, y), kTol) << "in place, D = " << D;
  add_rms_norm(host, res, x, w, 1e-5f, y);
  add_rms_norm(dev, resd, xd, wd, 1e-5f, yd);
  EXPECT_LT(rel(resd, res), kTol) << "D = " << D;
  EXPECT_LT(rel(yd, y), kTol) << "D = " << D;
}

TEST_F(DeviceOps, ElementwiseAndNorms) {
  const int64_t T = 37, D = 1031, E = 771, G = 3, H = 13;
  // A thread keeps 4 elements of a row in registers, up to 1024 threads (ops/cuda/rms_norm.cuh): D = 1031 fits
  // them (single floats), D = 1536 too as one float4 run a thread, D = 4500 has 404 elements beyond them (float4
  // runs, then the loop).
  check_rms_norms(host_, *dev_, T, D);
  check_rms_norms(host_, *dev_, T, 1536);
  check_rms_norms(host_, *dev_, 5, 4500);
  auto x = rand_host<2>({T, D}, 1, -3, 3);
  auto res = rand_host<2>({T, D}, 2);
  auto xd = to<Cuda>(x);
  auto resd = to<Cuda>(res);
  add(host_, x, res);
  add(*dev_, xd, resd);
  EXPECT_EQ(rel(resd, res), 0.0);  // one float add per element: bit-identical

  auto gy = rand_host<2>({T, E}, 4, -2, 2);
  auto gz = rand_host<2>({T, E}, 5, -3, 3);
  auto gw = rand_host<1>({E}, 6);
  Tensor<float, 2, Host> gout({T, E});
  Tensor<float, 2, Cuda> goutd({T, E});
  gated_rms_norm(host_, gy, gz, gw, G, 1e-5f, gout);
  gated_rms_norm(*dev_, to<Cuda>(gy), to<Cuda>(gz), to<Cuda>(gw), G, 1e-5f, goutd);
  EXPECT_LT(rel(goutd, gout), kTol);
  // In place (out = y, as the mixer calls it), 8200 channels in one group: the kernel (ops/cuda/gated_rms_norm.cuh)
  // keeps 8 columns a thread in registers, 1024 threads at most, so 8 columns are read from memory twice.
  const int64_t wide = 8200;
  auto wy = rand_host<2>({3, wide}, 13, -2, 2);
  auto wz = rand_host<2>({3, wide}, 14, -3, 3);
  auto ww = rand_host<1>({wide}, 15);
  auto wyd = to<Cuda>(wy);
  gated_rms_norm(host_, wy, wz, ww, 1, 1e-5f, wy);
  gated_rms_norm(*dev_, wyd, to<Cuda>(wz), to<Cuda>(ww), 1, 1e-5f, wyd);
  EXPECT_LT(rel(wyd, wy), kTol);

  auto dt = rand_host<2>({T, H}, 7, -6, 25);
  auto bias = rand_host<1>({H}, 8);
  Tensor<float, 2, Host> dto({T, H});
  Tensor<float, 2, Cuda> dtod({T, H});
  dt_softplus(host_, dt, bias, 0.001f, 5.0f, dto);
  dt_softplus(*dev_, to<Cuda>(dt), to<Cuda>(bias), 0.001f, 5.0f, dtod);
  EXPECT_LT(rel(dtod, dto), kTol);

  auto alog = rand_host<1>({H}, 9, -2, 3);
  Tensor<float, 1, Host> A({H});
  Tensor<float, 1, Cuda> Ad({H});
  neg_exp(host_, alog, A);
  neg_exp(*dev_, to<Cuda>(alog), Ad);
  EXPECT_LT(rel(Ad, A), kTol);

  auto W = rand_host<2>({29, 45}, 10);
  auto alpha = rand_host<1>({45}, 11, 0.01f, 1);
  auto beta = rand_host<1>({45}, 12);
  Tensor<float, 2, Host> weff({29, 45});
  Tensor<float, 2, Cuda> weffd({29, 45});
  fbi_weight(host_, W, alpha, beta, weff);
  fbi_weight(*dev_, to<Cuda>(W), to<Cuda>(alpha), to<Cuda>(beta), weffd);
  EXPECT_EQ(rel(weffd, weff), 0.0);  // the same two float operations per element
}

TEST_F(DeviceOps, EmbeddingAndLinear) {
  const int64_t V = 101, D = 67, B = 3, L = 5;
  auto table = rand_host<2>({V, D}, 20);
  std::vector<int32_t> ids(size_t(B * L));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 37 + 11) % V);
  auto idh = tensor_from<int32_t, 2>(ids, {B, L});
  Tensor<float, 3, Host> e({B, L, D});
  Tensor<float, 3, Cuda> ed({B, L, D});
  embedding(host_, idh, table, e);
  embedding(*dev_, to<Cuda>(idh), to<Cuda>(table), ed);
  EXPECT_EQ(rel(ed, e), 0.0);  // a copy
  ids[7] = int32_t(V);
  try {
    embedding(*dev_, to<Cuda>(tensor_from<int32_t, 2>(ids, {B, L})), to<Cuda>(table), ed);
    ADD_FAILURE() << "id " << V << " accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("token id 101 at (1, 2)"), std::string::npos) << err.what();
  }

  for (int64_t T : {1, 7, 130}) {
    const int64_t in = 259, out = 133;
    auto x = rand_host<2>({T, in}, 21 + uint64_t(T));
    auto W = rand_host<2>({out, in}, 22);
    auto bias = rand_host<1>({out}, 23);
    auto xd = to<Cuda>(x);
    auto Wd = to<Cuda>(W);
    auto biasd = to<Cuda>(bias);
    Tensor<float, 2, Host> y({T, out});
    Tensor<float, 2, Cuda> yd({T, out});
    linear(host_, x, W, bias, y);
    linear(*dev_, xd, Wd, biasd, yd);
    EXPECT_LT(rel(yd, y), kTol) << "T=" << T;
    linear(host_, x, W, {}, y);
    linear(*dev_, xd, Wd, {}, yd);
    EXPECT_LT(rel(yd, y), kTol) << "T=" << T << " no bias";
  }
}

// The head GEMV on bf16 weights: the device splits x into two bf16 terms (ops/cuda/dense_gemv.cuh), leaving
// |r| <= 2^-17 |x| = 7.6e-6 |x| per term where the host multiplies the fp32 x; the relative L2 of the sums
// is at most that, so 1e-5. Shapes: odd, and the decode head of the 2.7B model (one token, D = 2560).
TEST_F(DeviceOps, DenseGemvOnBf16WeightsMatchesHost) {
  for (auto [T, D, V] : {std::array<int64_t, 3>{3, 77, 301}, {1, 2560, 4001}, {16, 260, 999}}) {
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

TEST_F(DeviceOps, CausalConv1dPrefillStepAndStates) {
  // L = 70: three 32-token tiles, the last of 6; C = 150: two 128-channel blocks. K = 4 (every preset) and 3 take the
  // register kernel (K = 3 with its taps padded), K = 6 the shared-memory one.
  const int64_t B = 3, L = 70, C = 150, width = C + 5;
  auto wide = rand_host<3>({B, L, width}, 30);  // x is a strided slice of a wider buffer
  auto bias = rand_host<1>({C}, 32);
  auto wided = to<Cuda>(wide);
  auto biasd = to<Cuda>(bias);
  for (int64_t K : {4, 3, 6}) {
    auto w = rand_host<2>({C, K}, 31);
    auto init = rand_host<3>({B, C, K}, 33);
    auto wd = to<Cuda>(w);
    auto initd = to<Cuda>(init);
    for (int64_t len : {int64_t(2), int64_t(11), L}) {
      auto x = wide.cview().narrow(2, 3, C).narrow(1, 0, len);
      auto xd = wided.cview().narrow(2, 3, C).narrow(1, 0, len);
      Tensor<float, 3, Host> y({B, len, C}), fin({B, C, K});
      Tensor<float, 3, Cuda> yd({B, len, C}), find({B, C, K});
      causal_conv1d(host_, x, w, bias, y, Activation::Silu, init, fin);
      causal_conv1d(*dev_, xd, wd, biasd, yd, Activation::Silu, initd, find);
      EXPECT_LT(rel(yd, y), kTol) << "K=" << K << " L=" << len;
      EXPECT_EQ(rel(find, fin), 0.0) << "K=" << K << " L=" << len;  // copies of inputs
      // The state continued in place (final_state is initial_state's memory).
      auto inplace = to<Cuda>(init);
      causal_conv1d(*dev_, xd, wd, biasd, yd, Activation::Silu, inplace, inplace);
      EXPECT_EQ(rel(inplace, fin), 0.0) << "K=" << K << " L=" << len;
    }
  }
  const int64_t K = 4;
  auto w = rand_host<2>({C, K}, 31);
  auto wd = to<Cuda>(w);
  auto xs = rand_host<2>({B, C}, 34);
  auto state = rand_host<3>({B, C, K}, 35);
  auto stated = to<Cuda>(state);
  Tensor<float, 2, Host> ys({B, C});
  Tensor<float, 2, Cuda> ysd({B, C});
  causal_conv1d_step(host_, xs, w, {}, state, ys, Activation::None);
  causal_conv1d_step(*dev_, to<Cuda>(xs), wd, {}, stated, ysd, Activation::None);
  EXPECT_LT(rel(ysd, ys), kTol);
  EXPECT_EQ(rel(stated, state), 0.0);
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

TEST_F(DeviceOps, SsdScanMatchesHostAtOddAndRealShapes) {
  // (B, L, H, P, G, N): odd; one chunk shorter than a tile; the Bi-Mamba head shape over several chunks; P and N
  // past the chunk kernel's 64-column output slab and 32-wide k slab (a second, partial slab of each).
  const Ssd cases[] = {Ssd(2, 45, 6, 5, 3, 7, 40), Ssd(1, 3, 2, 3, 1, 2, 50), Ssd(2, 300, 4, 64, 1, 128, 60),
                       Ssd(1, 130, 2, 70, 1, 40, 90)};
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
      EXPECT_LT(rel(yd, y), kTol) << "L=" << c.L << " P=" << c.P << " chunk=" << chunk;
      EXPECT_LT(rel(find, fin), kTol) << "L=" << c.L << " P=" << c.P << " chunk=" << chunk;
    }
    // Without initial state and D; state continued in place.
    Tensor<float, 4, Host> y({c.B, c.L, c.H, c.P});
    Tensor<float, 4, Cuda> yd({c.B, c.L, c.H, c.P});
    auto state = to<Cuda>(c.init);
    Tensor<float, 4, Host> fin({c.B, c.H, c.P, c.N});
    ssd_scan(host_, c.x, c.dt, c.A, c.Bm, c.Cm, {}, 64, y, c.init, fin);
    ssd_scan(*dev_, xd, dtd, Ad, Bd, Cd, {}, 64, yd, state, state);
    EXPECT_LT(rel(yd, y), kTol);
    EXPECT_LT(rel(state, fin), kTol);
  }
}

// The model's layout: x, B and C are column ranges of one (B, L, W) buffer; y has a padded head pitch (its
// heads are not adjacent). Then the same in TF32, the products' precision when training with tf32 or bf16.
TEST_F(DeviceOps, SsdScanOnSlicesAndInTf32) {
  const int64_t B = 2, L = 150, H = 6, P = 16, G = 2, N = 24, W = H * P + 2 * G * N + 5, Pp = P + 3;
  const Ssd c(B, L, H, P, G, N, 70);  // dt, A, D, init
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
  // TF32 rounds each product's operands to 10 mantissa bits (2^-11 relative): sums of ~100 such terms of mixed
  // sign land near 1e-3 relative; 5e-3 leaves room and still fails an indexing error (relative error ~1).
  const std::pair<GemmPrecision, double> precisions[] = {{GemmPrecision::Fp32, kTol}, {GemmPrecision::Tf32, 5e-3}};
  for (const auto& [precision, tol] : precisions) {
    dev_->set_gemm_precision(precision);
    Tensor<float, 4, Cuda> yd({B, L, H, Pp}), find({B, H, P, N});
    ssd_scan(*dev_, xd, dtd, Ad, Bd, Cd, Dd, 64, TensorView<float, 4, Cuda>(yd.data(), y_shape, y_strides), initd, find);
    EXPECT_LT(rel(yd, y), tol) << to_string(precision);  // the padding columns stay zero in both
    EXPECT_LT(rel(find, fin), tol) << to_string(precision);
  }
  dev_->set_gemm_precision(GemmPrecision::Fp32);
}

TEST_F(DeviceOps, SsdStepAndSelectiveScan) {
  // Shapes: odd (scalar path), P not a multiple of the 8 rows per block with N = 132 (float4 path, a second
  // pass for lane 0), the 2.7B head shape.
  for (auto [H, P, G, N] : {std::array<int64_t, 4>{6, 5, 3, 7}, {4, 70, 2, 132}, {80, 64, 1, 128}}) {
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
    EXPECT_LT(rel(yd, y), kTol) << "H=" << H;
    EXPECT_LT(rel(stated, state), kTol) << "H=" << H;
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
  auto xd = to<Cuda>(x);
  auto dtd = to<Cuda>(dt);
  auto zd = to<Cuda>(z);
  auto Ad = to<Cuda>(A);
  auto Bd = to<Cuda>(Bm);
  auto Cd = to<Cuda>(Cm);
  auto Dd = to<Cuda>(D);
  auto initd = to<Cuda>(init);
  Tensor<float, 3, Host> y({B, L, E}), fin({B, E, N});
  Tensor<float, 3, Cuda> yd({B, L, E}), find({B, E, N});
  selective_scan(host_, x, dt, A, Bm, Cm, D, z, y, init, fin);
  selective_scan(*dev_, xd, dtd, Ad, Bd, Cd, Dd, zd, yd, initd, find);
  EXPECT_LT(rel(yd, y), kTol);
  EXPECT_LT(rel(find, fin), kTol);
  // One step from the final state, z absent.
  auto xs = rand_host<2>({B, E}, 88);
  auto dts = rand_host<2>({B, E}, 89, 0.001f, 0.3f);
  auto bs = rand_host<2>({B, N}, 90);
  auto cs = rand_host<2>({B, N}, 91);
  Tensor<float, 2, Host> ys({B, E});
  Tensor<float, 2, Cuda> ysd({B, E});
  selective_scan_step(host_, xs, dts, A, bs, cs, D, {}, fin, ys);
  selective_scan_step(*dev_, to<Cuda>(xs), to<Cuda>(dts), Ad, to<Cuda>(bs), to<Cuda>(cs), Dd, {}, find, ysd);
  EXPECT_LT(rel(ysd, ys), kTol);
  EXPECT_LT(rel(find, fin), kTol);
}

// The fused decode step, three steps in a row (the states carry over; the counters must come back to zero),
// with the gated norm and without it (the gated output, as a block with one norm group runs it).
// Shapes: odd with groups (scalar path, heads sharing B / C, a norm group per 3 heads), P over the 64 rows a
// block holds at once with N = 132 (float4 path, a second pass along N), the 2.7B shape; batch 3.
TEST_F(DeviceOps, FusedMamba2DecodeStepMatchesHostOverSteps) {
  for (bool with_norm : {true, false})
  for (auto [H, P, G, N] : {std::array<int64_t, 4>{6, 5, 2, 7}, {4, 70, 2, 132}, {80, 64, 1, 128}}) {
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
    const float eps = 1e-5f, lo = 0.0f, hi = 0.5f;  // an upper dt limit that some heads hit
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
      EXPECT_LT(rel(yd, y), kTol) << "H=" << H << " step " << step << " norm " << with_norm;
      EXPECT_LT(rel(ssmd, ssm), kTol) << "H=" << H << " step " << step << " norm " << with_norm;
      EXPECT_EQ(to_vector(convd), to_vector(conv)) << "the conv state is only shifted: bit-identical";
    }
  }
}

TEST_F(DeviceOps, BinaryLinearMatchesHostFromDecodeToSmallBatch) {
  // (out, in): odd; the Bi-Mamba 780M / 2.7B in_proj and out_proj shapes (many K slices and row groups);
  // odd shapes whose rows need 2 and 4 iterations of 512 columns per warp in the decode kernel.
  // T: the decode kernel (binary_gemv.cuh: 1 and 2 tiles of 2 tokens, T = 1 .. 4), every tile count of the
  // split-K tensor-core kernel (T = 5, 9, 16) and the dense SGEMM path above kBlDenseTokens (17, 40).
  const std::pair<int64_t, int64_t> shapes[] = {{77, 333},    {6304, 1536}, {10576, 2560},
                                                {2560, 5120}, {300, 4501},  {45, 9001}};
  for (auto [out, in] : shapes)
    for (int64_t T : {1, 2, 3, 4, 5, 9, 16, 17, 40}) {
      auto w = rand_host<2>({out, in}, 100 + uint64_t(out));
      BitTensor<uint32_t, Host> bits(out, in);
      pack_signs<uint32_t>(w.cview(), bits.view());
      auto x = rand_host<2>({T, in}, 200 + uint64_t(T), -2, 2);
      auto alpha = rand_host<1>({in}, 201, 0.01f, 1);
      auto beta = rand_host<1>({in}, 202, -0.2f, 0.2f);
      Tensor<float, 2, Host> y({T, out});
      Tensor<float, 2, Cuda> yd({T, out});
      binary_linear(host_, x, bits.cview(), alpha, beta, y);
      auto bitsd = to<Cuda>(bits);
      binary_linear(*dev_, to<Cuda>(x), bitsd.cview(), to<Cuda>(alpha), to<Cuda>(beta), yd);
      EXPECT_LT(rel(yd, y), kTol) << out << " x " << in << " T=" << T;
      // Deterministic: a second call gives the same bits (split-K partials summed in a fixed order).
      const auto first = to_vector(yd);
      binary_linear(*dev_, to<Cuda>(x), bitsd.cview(), to<Cuda>(alpha), to<Cuda>(beta), yd);
      EXPECT_EQ(to_vector(yd), first) << out << " x " << in << " T=" << T;
    }
}

// The bf16 copy of a host tensor (round to nearest even).
Tensor<bfloat16, 2, Host> to_bf16(const Tensor<float, 2, Host>& x) {
  Tensor<bfloat16, 2, Host> b(x.shape());
  for (int64_t t = 0; t < x.size(0); ++t)
    for (int64_t j = 0; j < x.size(1); ++j) b(t, j) = bfloat16(x(t, j));
  return b;
}

std::vector<float> floats(const std::vector<bfloat16>& v) {
  std::vector<float> f(v.size());
  for (size_t k = 0; k < v.size(); ++k) f[k] = float(v[k]);
  return f;
}

TEST_F(DeviceOps, BinaryLinearBf16MatchesHostFromDecodeToSmallBatch) {
  // bf16 x and y (alpha, beta float). (out, in): odd (in = 333 and 9001: scalar loads of x; 4500: 4-element
  // loads), and the 2.7B in_proj and out_proj shapes. T: the decode kernel (1, 2), the split-K tensor-core
  // kernel (8, 16) and the dense GEMM path (17, 64).
  // Tolerance (the issue's): relative L2 < 1e-2 against the host's bf16 op. Both backends round once to bf16
  // an fp32 result that agrees to ~1e-6 (the float test's 1e-5 bound); they differ only where the two fp32
  // values fall on either side of a rounding boundary, by one bf16 ulp (<= 2^-7 relative) there.
  // The bf16 kernels differ from the float kernels only in loading x and storing y: on the packed paths
  // (T <= 16) y is bit-for-bit the float op on float(x_bf16), rounded; the dense path's GEMM writes to fp32
  // scratch instead of y, so there it is compared within the rounding of y (2^-8 relative).
  const std::pair<int64_t, int64_t> shapes[] = {{77, 333}, {301, 4500}, {45, 9001}, {10576, 2560}, {2560, 5120}};
  for (auto [out, in] : shapes)
    for (int64_t T : {1, 2, 8, 16, 17, 64}) {
      auto w = rand_host<2>({out, in}, 500 + uint64_t(out));
      BitTensor<uint32_t, Host> bits(out, in);
      pack_signs<uint32_t>(w.cview(), bits.view());
      const auto xb = to_bf16(rand_host<2>({T, in}, 600 + uint64_t(T), -2, 2));
      auto alpha = rand_host<1>({in}, 601, 0.01f, 1);
      auto beta = rand_host<1>({in}, 602, -0.2f, 0.2f);
      Tensor<bfloat16, 2, Host> y({T, out});
      binary_linear(host_, xb, bits.cview(), alpha, beta, y);
      auto bitsd = to<Cuda>(bits);
      auto alphad = to<Cuda>(alpha);
      auto betad = to<Cuda>(beta);
      Tensor<bfloat16, 2, Cuda> yd({T, out});
      binary_linear(*dev_, to<Cuda>(xb), bitsd.cview(), alphad, betad, yd);
      const auto got = to_vector(yd);
      EXPECT_LT(relative_l2(floats(got), floats(to_vector(y))), 1e-2) << out << " x " << in << " T=" << T;

      Tensor<float, 2, Host> xf({T, in});
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < in; ++j) xf(t, j) = float(xb(t, j));
      Tensor<float, 2, Cuda> yfd({T, out});
      binary_linear(*dev_, to<Cuda>(xf), bitsd.cview(), alphad, betad, yfd);
      const auto yf = to_vector(yfd);
      std::vector<bfloat16> rounded(yf.size());
      for (size_t k = 0; k < yf.size(); ++k) rounded[k] = bfloat16(yf[k]);
      if (T <= 16) {
        size_t mismatches = 0;
        for (size_t k = 0; k < got.size(); ++k) mismatches += got[k].bits != rounded[k].bits;
        EXPECT_EQ(mismatches, 0u) << out << " x " << in << " T=" << T;
      } else {
        EXPECT_LT(relative_l2(floats(got), yf), std::ldexp(1.0, -8)) << out << " x " << in << " T=" << T;
      }
      // Deterministic: a second call gives the same bits.
      binary_linear(*dev_, to<Cuda>(xb), bitsd.cview(), alphad, betad, yd);
      const auto again = to_vector(yd);
      size_t changed = 0;
      for (size_t k = 0; k < got.size(); ++k) changed += again[k].bits != got[k].bits;
      EXPECT_EQ(changed, 0u) << out << " x " << in << " T=" << T;
    }
}

TEST_F(DeviceOps, BinaryLinearChainReplayedFromAGraphEqualsEagerCalls) {
  // Eight dependent calls (each output is the next input), with split-K fix-ups (2560 x 2560 runs in several
  // K slices) and, on sm_90, programmatic dependent launch: captured into one graph and replayed, the result
  // must be bit-identical to the eager calls (the kernel is deterministic and waits for its input).
  const int64_t n = 2560, layers = 8;
  std::vector<BitTensor<uint32_t, Cuda>> signs;
  for (int64_t l = 0; l < layers; ++l) {
    BitTensor<uint32_t, Host> bits(n, n);
    pack_signs<uint32_t>(rand_host<2>({n, n}, 300 + uint64_t(l)).cview(), bits.view());
    signs.push_back(to<Cuda>(bits));
  }
  auto alpha = to<Cuda>(rand_host<1>({n}, 310, 0.005f, 0.03f));  // keeps |y| ~ |x| from layer to layer
  auto beta = to<Cuda>(rand_host<1>({n}, 311, -0.001f, 0.001f));
  auto x0 = to<Cuda>(rand_host<2>({1, n}, 312));
  std::vector<Tensor<float, 2, Cuda>> h;
  for (int64_t l = 0; l < layers; ++l) h.emplace_back(Extents<2>{1, n});
  auto chain = [&](Context<Cuda>& ctx) {
    for (int64_t l = 0; l < layers; ++l)
      binary_linear(ctx, l == 0 ? x0.cview() : h[size_t(l - 1)].cview(), signs[size_t(l)].cview(), alpha, beta,
                    h[size_t(l)]);
  };
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  {
    Context<Cuda> ctx(stream);
    chain(ctx);  // eager; also grows the workspace and the counters before the capture
    ctx.synchronize();
    const auto eager = to_vector(h.back());
    ASSERT_GT(relative_l2(eager, std::vector<float>(eager.size(), 0.0f)), 0.0);
    ctx.workspace().reset();
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    chain(ctx);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int replay = 0; replay < 3; ++replay) {
      for (auto& t : h) BIMAMBA_CUDA_CHECK(cudaMemsetAsync(t.data(), 0, size_t(n) * sizeof(float), stream));
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      ctx.synchronize();
      EXPECT_EQ(to_vector(h.back()), eager) << "replay " << replay;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace bimamba::test
