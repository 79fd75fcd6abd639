// Every Cuda backward op against the Host backward op on the same random inputs, at odd shapes (nothing a
// multiple of a warp or a tile), under both GradientModes: the outputs start from the same random values on
// both backends, so Overwrite must ignore them and Accumulate must add to them.
//
// Tolerance: relative L2 < 1e-4 (issue 7's target for fp32 device gradients). Both backends use the same
// formulas with the same double sums in the same (token) order; they differ in float rounding only: cuBLAS
// and Eigen GEMMs sum in different orders (~n u relative for n terms, u = 6e-8: ~1e-6 here), expf / sigmoid on
// the device vs std::exp on the host differ by an ulp or two, and the scan recurrences carry such differences
// through L steps with factors a_t < 1. All of that is ~1e-6; 1e-4 leaves room without hiding a wrong term
// (any formula error is O(1) relative).
#include <gtest/gtest.h>

#include <bimamba/cuda.hpp>
#include <bimamba/ops/causal_conv1d_backward.hpp>
#include <bimamba/ops/dt_softplus_backward.hpp>
#include <bimamba/ops/embedding_backward.hpp>
#include <bimamba/ops/fbi_linear.hpp>
#include <bimamba/ops/fbi_linear_backward.hpp>
#include <bimamba/ops/gated_rms_norm_backward.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/ops/linear_backward.hpp>
#include <bimamba/ops/neg_exp_backward.hpp>
#include <bimamba/ops/rms_norm_backward.hpp>
#include <bimamba/ops/selective_scan_backward.hpp>
#include <bimamba/ops/ssd_scan_backward.hpp>

#include <device_support.hpp>
#include <utility>

namespace bimamba::test {
namespace {

constexpr double kTol = 1e-4;
constexpr GradientMode kModes[] = {GradientMode::Overwrite, GradientMode::Accumulate};

const char* name(GradientMode mode) { return mode == GradientMode::Overwrite ? "Overwrite" : "Accumulate"; }

// The ops with both input and parameter gradients take GradientModes (train/gradient_mode.hpp): the model's split
// (inputs overwritten, parameters accumulated) and its reverse show each output class following its own mode.
constexpr GradientModes kSplitModes[] = {{GradientMode::Overwrite, GradientMode::Accumulate},
                                         {GradientMode::Accumulate, GradientMode::Overwrite}};
std::string name(GradientModes modes) {
  return std::string(" inputs ") + name(modes.inputs) + ", params " + name(modes.params);
}

// A gradient output on both backends, starting from the same random values.
template <int Rank>
struct GradPair {
  Tensor<float, Rank, Host> host;
  Tensor<float, Rank, Cuda> dev;
  GradPair(const Extents<Rank>& shape, uint64_t seed) : host(rand_host<Rank>(shape, seed, -0.5f, 0.5f)), dev(to<Cuda>(host)) {}
  double rel_l2() const { return rel(dev, host); }
};

using TrainOpsCuda = DeviceVsHost;

// Random inputs of a projection's forward and backward at an odd shape, on both backends.
struct ProjectionInputs {
  int64_t T = 37, in = 45, out = 29;
  Tensor<float, 2, Host> x = rand_host<2>({T, in}, 1), W = rand_host<2>({out, in}, 2), dy = rand_host<2>({T, out}, 3);
  Tensor<float, 1, Host> alpha = rand_host<1>({in}, 4, 0.01f, 1.0f), beta = rand_host<1>({in}, 5, -0.2f, 0.2f);
  Tensor<float, 2, Cuda> xd = to<Cuda>(x), Wd = to<Cuda>(W), dyd = to<Cuda>(dy);
  Tensor<float, 1, Cuda> ad = to<Cuda>(alpha), bd = to<Cuda>(beta);
};

TEST_F(TrainOpsCuda, LinearAndFbiLinear) {
  ProjectionInputs in_;
  const int64_t T = in_.T, in = in_.in, out = in_.out;
  auto &x = in_.x, &W = in_.W, &dy = in_.dy;
  auto &xd = in_.xd, &Wd = in_.Wd, &dyd = in_.dyd;
  auto &alpha = in_.alpha, &beta = in_.beta;
  auto &ad = in_.ad, &bd = in_.bd;
  for (GradientMode mode : kModes) {
    GradPair<2> dx({T, in}, 10), dW({out, in}, 11);
    GradPair<1> db({out}, 12);
    linear_backward(host_, x, W, dy, dx.host, dW.host, db.host, mode);
    linear_backward(*dev_, xd, Wd, dyd, dx.dev, dW.dev, db.dev, mode);
    EXPECT_LT(dx.rel_l2(), kTol) << "linear dx " << name(mode);
    EXPECT_LT(dW.rel_l2(), kTol) << "linear dW " << name(mode);
    EXPECT_LT(db.rel_l2(), kTol) << "linear dbias " << name(mode);

    GradPair<2> fx({T, in}, 20), fW({out, in}, 21);
    GradPair<1> fa({in}, 22), fb({in}, 23);
    fbi_linear_backward(host_, x, W, alpha, beta, dy, fx.host, fW.host, fa.host, fb.host, mode);
    fbi_linear_backward(*dev_, xd, Wd, ad, bd, dyd, fx.dev, fW.dev, fa.dev, fb.dev, mode);
    EXPECT_LT(fx.rel_l2(), kTol) << "fbi dx " << name(mode);
    EXPECT_LT(fW.rel_l2(), kTol) << "fbi dW " << name(mode);
    EXPECT_LT(fa.rel_l2(), kTol) << "fbi dalpha " << name(mode);
    EXPECT_LT(fb.rel_l2(), kTol) << "fbi dbeta " << name(mode);
  }
  // Only some outputs requested (the mixer's projection_backward pattern).
  GradPair<2> dx({T, in}, 30), dW({out, in}, 31);
  linear_backward(host_, x, W, dy, dx.host, {}, {}, GradientMode::Overwrite);
  linear_backward(*dev_, xd, Wd, dyd, dx.dev, {}, {}, GradientMode::Overwrite);
  linear_backward(host_, x, W, dy, {}, dW.host, {}, GradientMode::Accumulate);
  linear_backward(*dev_, xd, Wd, dyd, {}, dW.dev, {}, GradientMode::Accumulate);
  EXPECT_LT(dx.rel_l2(), kTol);
  EXPECT_LT(dW.rel_l2(), kTol);
}

// The projections' forward and backward with the device GEMMs in TF32 and bf16 (ops/cuda/gemm.cuh) against
// the host in fp32. Unit roundoff of the operands: TF32 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3; a product of two
// rounded operands is off by up to twice that, and sums of random-sign terms keep the relative error near it:
// relative L2 < 2e-3 (TF32) and < 1e-2 (bf16, issue 6's bf16 bound). A transposed operand or a wrong leading
// dimension gives O(1). That bf16 really ran: its dW is further from the host than fp32 rounding (1e-6).
// At one shape: linear and the FBI layer (forward and backward) in TF32 and bf16 against the host's fp32.
void check_reduced_precision_projections(Context<Host>& host, Context<Cuda>& dev, const ProjectionInputs& p) {
  const int64_t T = p.T, in = p.in, out = p.out;
  const std::string shape = " at (T, in, out) = (" + std::to_string(T) + ", " + std::to_string(in) + ", " +
                            std::to_string(out) + ")";
  for (const auto& [precision, tol] : {std::pair{GemmPrecision::Tf32, 2e-3}, std::pair{GemmPrecision::Bf16, 1e-2}}) {
    dev.set_gemm_precision(precision);
    const std::string name = to_string(precision) + shape;
    Tensor<float, 2, Host> y({T, out});
    Tensor<float, 2, Cuda> yd({T, out});
    linear(host, p.x, p.W, {}, y);
    linear(dev, p.xd, p.Wd, {}, yd);
    EXPECT_LT(rel(yd, y), tol) << "linear y " << name;
    fbi_linear(host, p.x, p.W, p.alpha, p.beta, y);
    fbi_linear(dev, p.xd, p.Wd, p.ad, p.bd, yd);
    EXPECT_LT(rel(yd, y), tol) << "fbi_linear y " << name;
    GradPair<2> dx({T, in}, 10), dW({out, in}, 11);
    linear_backward(host, p.x, p.W, p.dy, dx.host, dW.host, {}, GradientMode::Overwrite);
    linear_backward(dev, p.xd, p.Wd, p.dyd, dx.dev, dW.dev, {}, GradientMode::Overwrite);
    EXPECT_LT(dx.rel_l2(), tol) << "linear dx " << name;
    EXPECT_LT(dW.rel_l2(), tol) << "linear dW " << name;
    if (precision == GemmPrecision::Bf16) EXPECT_GT(dW.rel_l2(), 1e-5) << "the bf16 path was not taken " << name;
    GradPair<2> fx({T, in}, 20), fW({out, in}, 21);
    GradPair<1> fa({in}, 22), fb({in}, 23);
    fbi_linear_backward(host, p.x, p.W, p.alpha, p.beta, p.dy, fx.host, fW.host, fa.host, fb.host, GradientMode::Accumulate);
    fbi_linear_backward(dev, p.xd, p.Wd, p.ad, p.bd, p.dyd, fx.dev, fW.dev, fa.dev, fb.dev, GradientMode::Accumulate);
    EXPECT_LT(fx.rel_l2(), tol) << "fbi dx " << name;
    EXPECT_LT(fW.rel_l2(), tol) << "fbi dW " << name;
    EXPECT_LT(fa.rel_l2(), tol) << "fbi dalpha " << name;
    EXPECT_LT(fb.rel_l2(), tol) << "fbi dbeta " << name;
  }
  dev.set_gemm_precision(GemmPrecision::Fp32);
}

// Two shapes of each kind: T <= 2 out takes the FBI layer's bf16 sign GEMMs, T > 2 out W_eff in bf16
// (fbi_sign_gemm_pays).
TEST_F(TrainOpsCuda, LinearInTf32AndBf16) {
  check_reduced_precision_projections(host_, *dev_, ProjectionInputs{37, 45, 29});
  check_reduced_precision_projections(host_, *dev_, ProjectionInputs{70, 45, 13});
  // in and out multiples of 4: the float4 forms of the bf16 copies, the sign matrix and the scaled rows
  check_reduced_precision_projections(host_, *dev_, ProjectionInputs{36, 48, 20});
  check_reduced_precision_projections(host_, *dev_, ProjectionInputs{88, 48, 20});
}

// The RMSNorm backward at (T, D), both modes.
void check_rms_norm_backward(Context<Host>& host, Context<Cuda>& dev, int64_t T, int64_t D) {
  auto x = rand_host<2>({T, D}, 1, -3, 3);
  auto w = rand_host<1>({D}, 2, 0.5f, 1.5f);
  auto dy = rand_host<2>({T, D}, 3);
  for (GradientMode mode : kModes) {
    GradPair<2> dx({T, D}, 10);
    GradPair<1> dw({D}, 11);
    rms_norm_backward(host, x, w, 1e-5f, dy, dx.host, dw.host, mode);
    rms_norm_backward(dev, to<Cuda>(x), to<Cuda>(w), 1e-5f, to<Cuda>(dy), dx.dev, dw.dev, mode);
    EXPECT_LT(dx.rel_l2(), kTol) << "rms_norm dx " << name(mode) << " D = " << D;
    EXPECT_LT(dw.rel_l2(), kTol) << "rms_norm dweight " << name(mode) << " D = " << D;
  }
}

// The gated norm backward at (T, E, groups), both modes, every output requested.
void check_gated_norm_backward(Context<Host>& host, Context<Cuda>& dev, int64_t T, int64_t E, int64_t G) {
  auto y = rand_host<2>({T, E}, 4, -2, 2);
  auto z = rand_host<2>({T, E}, 5, -3, 3);
  auto gw = rand_host<1>({E}, 6, 0.5f, 1.5f);
  auto dout = rand_host<2>({T, E}, 7);
  const std::string shape = " at (T, E, groups) = (" + std::to_string(T) + ", " + std::to_string(E) + ", " +
                            std::to_string(G) + ")";
  for (const GradientModes modes : kSplitModes) {
    GradPair<2> gdy({T, E}, 20), gdz({T, E}, 21);
    GradPair<1> gdw({E}, 22);
    gated_rms_norm_backward(host, y, z, gw, G, 1e-5f, dout, gdy.host, gdz.host, gdw.host, modes);
    gated_rms_norm_backward(dev, to<Cuda>(y), to<Cuda>(z), to<Cuda>(gw), G, 1e-5f, to<Cuda>(dout), gdy.dev, gdz.dev,
                            gdw.dev, modes);
    EXPECT_LT(gdy.rel_l2(), kTol) << "gated dy" << name(modes) << shape;
    EXPECT_LT(gdz.rel_l2(), kTol) << "gated dz" << name(modes) << shape;
    EXPECT_LT(gdw.rel_l2(), kTol) << "gated dweight" << name(modes) << shape;
  }
}

TEST_F(TrainOpsCuda, Norms) {
  const int64_t T = 37, E = 771, G = 3;
  // RMSNorm (ops/cuda/rms_norm_backward.cuh): the gated norm's kernel below without the gate. D = 1031: single
  // floats, all held; D = 4500: float4 runs and 404 columns beyond the 4096 held; 2500 rows of 64: blocks walk
  // several rows.
  check_rms_norm_backward(host_, *dev_, T, 1031);
  check_rms_norm_backward(host_, *dev_, 5, 4500);
  check_rms_norm_backward(host_, *dev_, 2500, 64);
  // The gated norm's kernel (ops/cuda/gated_rms_norm_backward.cuh) holds 8 columns a thread, up to 512 threads
  // a block, single floats or float4 runs (S a multiple of 4, aligned rows), and a block walks every blocks-th
  // row. 257 channels a group: two warps, single floats, part of the threads with fewer columns. 6163 in 2 groups:
  // 16 warps and 2067 columns beyond the held ones (read from memory in both passes). 1536: float4 runs. 4400 in
  // 2 groups: float4 runs and 304 columns beyond them. 512 channels in 2 groups over 1500 rows: more rows than
  // blocks (at most 1024 a group), so two-warp blocks walk several rows (both parities of the sums' buffers, dw
  // summed over rows in shared memory).
  check_gated_norm_backward(host_, *dev_, T, E, G);
  check_gated_norm_backward(host_, *dev_, 17, 2 * 6163, 2);
  check_gated_norm_backward(host_, *dev_, T, 1536, 1);
  check_gated_norm_backward(host_, *dev_, 9, 2 * 4400, 2);
  check_gated_norm_backward(host_, *dev_, 1500, 2 * 512, 2);
  auto y = rand_host<2>({T, E}, 4, -2, 2);
  auto gw = rand_host<1>({E}, 6, 0.5f, 1.5f);
  auto dout = rand_host<2>({T, E}, 7);
  // A strided z (the model's z is a column range of in_proj's output), only dz requested.
  const int64_t R = E + 5;
  auto wide = rand_host<2>({T, R}, 30, -3, 3);
  GradPair<2> wide_dz({T, R}, 31);
  auto wide_d = to<Cuda>(wide);
  gated_rms_norm_backward(host_, y, wide.cview().narrow(1, 2, E), gw, G, 1e-5f, dout, {},
                          wide_dz.host.view().narrow(1, 2, E), {}, GradientMode::Accumulate);
  gated_rms_norm_backward(*dev_, to<Cuda>(y), wide_d.cview().narrow(1, 2, E), to<Cuda>(gw), G, 1e-5f, to<Cuda>(dout), {},
                          wide_dz.dev.view().narrow(1, 2, E), {}, GradientMode::Accumulate);
  EXPECT_LT(wide_dz.rel_l2(), kTol);
  // z and dz with a column stride (every other column of a (T, 2E) tensor), dz and dweight requested.
  const Extents<2> odd_shape{T, E}, odd_strides{2 * E, 2};
  auto pairs = rand_host<2>({T, 2 * E}, 32, -3, 3);
  auto pairs_d = to<Cuda>(pairs);
  GradPair<2> pairs_dz({T, 2 * E}, 33);
  GradPair<1> pairs_dw({E}, 34);
  const TensorView<const float, 2, Host> odd_z(pairs.data() + 1, odd_shape, odd_strides);
  const TensorView<float, 2, Host> odd_dz(pairs_dz.host.data() + 1, odd_shape, odd_strides);
  const TensorView<const float, 2, Cuda> odd_z_d(pairs_d.data() + 1, odd_shape, odd_strides);
  const TensorView<float, 2, Cuda> odd_dz_d(pairs_dz.dev.data() + 1, odd_shape, odd_strides);
  gated_rms_norm_backward(host_, y, odd_z, gw, G, 1e-5f, dout, {}, odd_dz, pairs_dw.host, GradientMode::Accumulate);
  gated_rms_norm_backward(*dev_, to<Cuda>(y), odd_z_d, to<Cuda>(gw), G, 1e-5f, to<Cuda>(dout), {}, odd_dz_d,
                          pairs_dw.dev, GradientMode::Accumulate);
  EXPECT_LT(pairs_dz.rel_l2(), kTol);
  EXPECT_LT(pairs_dw.rel_l2(), kTol);
}

TEST_F(TrainOpsCuda, Conv1dDtAndNegExp) {
  // K = 4 as every preset, 3, and 20 (its tile needs more than the default 48 KB of shared memory); C = 13 and
  // 150 (two 128-channel blocks); L = 3 < K, 9, 130 (five 32-token tiles, the last of 2 tokens).
  for (int64_t K : {4, 3, 20}) {
    for (auto [L, C] : {std::pair<int64_t, int64_t>{3, 13}, {9, 150}, {130, 13}, {130, 150}}) {
      const int64_t B = 2, R = C + 7;
      auto wide = rand_host<3>({B, L, R}, 1, -2, 2);  // x is the column range [3, 3 + C) (strided)
      auto w = rand_host<2>({C, K}, 2);
      auto bias = rand_host<1>({C}, 3);
      auto dy = rand_host<3>({B, L, C}, 4);
      auto wide_d = to<Cuda>(wide);
      for (const GradientModes modes : kSplitModes) {
        GradPair<3> dx({B, L, R}, 10);
        GradPair<2> dw({C, K}, 11);
        GradPair<1> db({C}, 12);
        causal_conv1d_backward(host_, wide.cview().narrow(2, 3, C), w, bias, dy, dx.host.view().narrow(2, 3, C),
                               dw.host, db.host, modes);
        causal_conv1d_backward(*dev_, wide_d.cview().narrow(2, 3, C), to<Cuda>(w), to<Cuda>(bias), to<Cuda>(dy),
                               dx.dev.view().narrow(2, 3, C), dw.dev, db.dev, modes);
        EXPECT_LT(dx.rel_l2(), kTol) << "conv dx K = " << K << " L = " << L << " C = " << C << name(modes);
        EXPECT_LT(dw.rel_l2(), kTol) << "conv dw K = " << K << " L = " << L << " C = " << C << name(modes);
        EXPECT_LT(db.rel_l2(), kTol) << "conv dbias K = " << K << " L = " << L << " C = " << C << name(modes);
      }
    }
  }

  const int64_t T = 37, H = 13;
  auto dt = rand_host<2>({T, H}, 20, -6, 25);  // some above 20, some clamped by hi = 5 or lo
  auto bias = rand_host<1>({H}, 21);
  auto dout = rand_host<2>({T, H}, 22);
  for (const GradientModes modes : kSplitModes) {
    GradPair<2> ddt({T, H}, 23);
    GradPair<1> dbias({H}, 24);
    dt_softplus_backward(host_, dt, bias, 0.001f, 5.0f, dout, ddt.host, dbias.host, modes);
    dt_softplus_backward(*dev_, to<Cuda>(dt), to<Cuda>(bias), 0.001f, 5.0f, to<Cuda>(dout), ddt.dev, dbias.dev,
                         modes);
    EXPECT_LT(ddt.rel_l2(), kTol) << "dt ddt" << name(modes);
    EXPECT_LT(dbias.rel_l2(), kTol) << "dt dbias" << name(modes);
    const GradientMode mode = modes.inputs;  // neg_exp_backward's one output

    auto alog = rand_host<1>({H}, 25, -2, 3);
    Tensor<float, 1, Host> A({H});
    for (int64_t h = 0; h < H; ++h) A(h) = -std::exp(alog(h));
    auto dA = rand_host<1>({H}, 26);
    GradPair<1> dalog({H}, 27);
    neg_exp_backward(host_, A, dA, dalog.host, mode);
    neg_exp_backward(*dev_, to<Cuda>(A), to<Cuda>(dA), dalog.dev, mode);
    EXPECT_LT(dalog.rel_l2(), kTol) << "neg_exp " << name(mode);
  }
}

TEST_F(TrainOpsCuda, Embedding) {
  const int64_t V = 101, D = 67, B = 3, L = 5;
  std::vector<int32_t> ids(size_t(B * L));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7 + 3) % 11);  // ids repeat: rows get several adds
  auto idh = tensor_from<int32_t, 2>(ids, {B, L});
  auto dout = rand_host<3>({B, L, D}, 1);
  for (GradientMode mode : kModes) {
    GradPair<2> dE({V, D}, 2);
    embedding_backward(host_, idh, dout, dE.host, mode);
    embedding_backward(*dev_, to<Cuda>(idh), to<Cuda>(dout), dE.dev, mode);
    // The device adds each row's positions in the host's order (a stable grouping by id): the same bits.
    EXPECT_EQ(dE.rel_l2(), 0.0) << "embedding " << name(mode);
  }
  // A long batch where frequent ids take many positions, in Accumulate: still the host's bits, on every run.
  const int64_t B2 = 4, L2 = 600;
  std::vector<int32_t> many(size_t(B2 * L2));
  for (size_t i = 0; i < many.size(); ++i) many[i] = int32_t((i * i * 31 + i * 17) % 13 == 0 ? 5 : (i * 53) % V);
  auto manyh = tensor_from<int32_t, 2>(many, {B2, L2});
  auto dout2 = rand_host<3>({B2, L2, D}, 3);
  GradPair<2> dE2({V, D}, 4);
  embedding_backward(host_, manyh, dout2, dE2.host, GradientMode::Accumulate);
  embedding_backward(*dev_, to<Cuda>(manyh), to<Cuda>(dout2), dE2.dev, GradientMode::Accumulate);
  EXPECT_EQ(dE2.rel_l2(), 0.0) << "embedding, repeated ids";
  ids[7] = int32_t(V);
  Tensor<float, 2, Cuda> dE({V, D});
  try {
    embedding_backward(*dev_, to<Cuda>(tensor_from<int32_t, 2>(ids, {B, L})), to<Cuda>(dout), dE.view(),
                       GradientMode::Overwrite);
    ADD_FAILURE() << "an id outside the vocabulary must throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("token id 101 at (1, 2)"), std::string::npos) << e.what();
  }
}

// The SSD scan backward with x, B, C as column ranges of one (B, L, C) tensor, as in the model. The device
// computes it in chunks of 64 tokens (ops/cuda/ssd_scan_backward.cuh), the host as the sequential recurrence;
// `tol` is kTol for the fp32 products, wider for TF32 (the test that sets it says why). With `slow_decay` a
// 64-token chunk decays by ~exp(-0.2) instead of ~exp(-17): the terms that carry a state across chunk boundaries
// (exp(cs_last) <F, S0> in dl, the states' products) are then as large as the rest instead of ~1e-7 of it.
void check_ssd(Context<Host>& host, Context<Cuda>& dev, int64_t B, int64_t L, int64_t H, int64_t P, int64_t G,
               int64_t N, bool with_D, double tol = kTol, bool slow_decay = false) {
  const int64_t E = H * P, C = E + 2 * G * N;
  auto xbc = rand_host<3>({B, L, C}, 1);
  auto dt = slow_decay ? rand_host<3>({B, L, H}, 2, 0.001f, 0.02f) : rand_host<3>({B, L, H}, 2, 0.01f, 0.5f);
  auto A = slow_decay ? rand_host<1>({H}, 3, -0.5f, -0.05f) : rand_host<1>({H}, 3, -2.0f, -0.1f);
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
  for (const GradientModes modes : kSplitModes) {  // dD under modes.params, the other outputs under modes.inputs
    GradPair<4> dx({B, L, H, P}, 10), dB({B, L, G, N}, 11), dC({B, L, G, N}, 12);
    GradPair<3> ddt({B, L, H}, 13);
    GradPair<1> dA({H}, 14), dD({H}, 15);
    auto run_dev = [&](GradPair<4>& gx, GradPair<3>& gdt, GradPair<1>& gA, GradPair<4>& gB, GradPair<4>& gC,
                       GradPair<1>& gD) {
      ssd_scan_backward(dev, xd, dt_d.cview(), A_d.cview(), Bd, Cd,
                        with_D ? D_d.cview() : TensorView<const float, 1, Cuda>{}, dy_d.cview(), gx.dev.view(),
                        gdt.dev.view(), gA.dev.view(), gB.dev.view(), gC.dev.view(),
                        with_D ? gD.dev.view() : TensorView<float, 1, Cuda>{}, modes);
    };
    ssd_scan_backward(host, xh, dt, A, Bh, Ch, with_D ? D.cview() : TensorView<const float, 1, Host>{}, dy, dx.host,
                      ddt.host, dA.host, dB.host, dC.host, with_D ? dD.host.view() : TensorView<float, 1, Host>{},
                      modes);
    run_dev(dx, ddt, dA, dB, dC, dD);
    const std::string what = shape + name(modes);
    EXPECT_LT(dx.rel_l2(), tol) << what << " dx";
    EXPECT_LT(ddt.rel_l2(), tol) << what << " ddt";
    EXPECT_LT(dA.rel_l2(), tol) << what << " dA";
    EXPECT_LT(dB.rel_l2(), tol) << what << " dB";
    EXPECT_LT(dC.rel_l2(), tol) << what << " dC";
    if (with_D) EXPECT_LT(dD.rel_l2(), tol) << what << " dD";
    else EXPECT_EQ(dD.rel_l2(), 0.0) << what << " dD was not requested: untouched";
    // No atomics, every sum in a fixed order: a second run writes the same bits into the outputs it overwrites
    // (exact comparison; the accumulated ones start from other random values).
    GradPair<4> dx2({B, L, H, P}, 20), dB2({B, L, G, N}, 21), dC2({B, L, G, N}, 22);
    GradPair<3> ddt2({B, L, H}, 23);
    GradPair<1> dA2({H}, 24), dD2({H}, 25);
    run_dev(dx2, ddt2, dA2, dB2, dC2, dD2);
    if (modes.inputs == GradientMode::Overwrite) {
      EXPECT_EQ(to_vector(dx2.dev), to_vector(dx.dev)) << what << " dx differs on a rerun";
      EXPECT_EQ(to_vector(ddt2.dev), to_vector(ddt.dev)) << what << " ddt differs on a rerun";
      EXPECT_EQ(to_vector(dA2.dev), to_vector(dA.dev)) << what << " dA differs on a rerun";
      EXPECT_EQ(to_vector(dB2.dev), to_vector(dB.dev)) << what << " dB differs on a rerun";
      EXPECT_EQ(to_vector(dC2.dev), to_vector(dC.dev)) << what << " dC differs on a rerun";
    } else if (with_D) {
      EXPECT_EQ(to_vector(dD2.dev), to_vector(dD.dev)) << what << " dD differs on a rerun";
    }
  }
}

// Shapes around the device's 64-token chunks (one partial chunk, exactly one, one token more, several with a
// partial last one, a long sequence), groups shared by several heads, several batch rows, D present or not.
// The tolerance is the file's kTol: the chunked float computation and the host's sequential one differ by
// rounding only (~1e-6 relative: the decays exp(cs_i - cs_j) <= 1 keep every term bounded, and the sums over
// tokens are in double on both sides).
TEST_F(TrainOpsCuda, SsdScan) {
  check_ssd(host_, *dev_, 2, 7, 4, 3, 2, 5, true);
  check_ssd(host_, *dev_, 3, 37, 6, 5, 3, 7, false);
  check_ssd(host_, *dev_, 1, 1, 2, 3, 1, 4, true);      // L = 1
  check_ssd(host_, *dev_, 1, 63, 2, 5, 1, 7, false);    // L = chunk - 1
  check_ssd(host_, *dev_, 1, 64, 2, 5, 1, 7, true);     // L = chunk
  check_ssd(host_, *dev_, 1, 65, 2, 5, 1, 7, true);     // L = chunk + 1: a one-token last chunk
  check_ssd(host_, *dev_, 2, 131, 2, 5, 1, 7, false);   // L = 2 chunks + 3
  check_ssd(host_, *dev_, 1, 300, 4, 17, 2, 33, true);  // long: 5 chunks, the state carried through 4 boundaries
  check_ssd(host_, *dev_, 3, 70, 4, 3, 2, 9, true);     // G = 2 with 4 heads (dB, dC summed over 2 heads), B = 3
  check_ssd(host_, *dev_, 3, 70, 4, 3, 2, 9, false);
  check_ssd(host_, *dev_, 2, 67, 4, 64, 1, 128, true);  // the real head shape: P = 64, N = 128
  check_ssd(host_, *dev_, 1, 19, 2, 300, 1, 1100, true);  // N, P above one output tile (128 / 64 columns): several tiles
  check_ssd(host_, *dev_, 2, 200, 4, 17, 2, 33, true, kTol, true);  // slow decay: 4 chunks whose states matter
  check_ssd(host_, *dev_, 2, 200, 4, 16, 2, 32, true, kTol, true);  // the same through the float4 read-out path
  check_ssd(host_, *dev_, 1, 130, 2, 68, 1, 8, true, kTol, true);   // slow decay, P over two read-out column slabs
  // The token kernel takes 16 lanes an item in float4s where P % 4 == 0 and the rows allow (P = 64, 300, 16, 68,
  // 8 above and here), a warp an item otherwise (P = 3, 5, 17). 33 items: the last warp's second half is past
  // the end and must still join the shuffles.
  check_ssd(host_, *dev_, 1, 33, 1, 8, 1, 4, true);
}

// The same backward with its batched products on TF32 tensor cores (the context's precision under
// --precision tf32 | bf16). TF32 keeps 10 mantissa bits (u = 2^-11 = 4.9e-4 per operand): the products' relative
// error is ~1e-3 at these sums of 5 .. 128 terms, so 5e-3 (the forward's TF32 bound in device_matches_host.cu);
// a wrong operand or leading dimension is O(1). The fp32 checks above use SGEMM and stay at kTol.
TEST_F(TrainOpsCuda, SsdScanInTf32) {
  dev_->set_gemm_precision(GemmPrecision::Tf32);
  check_ssd(host_, *dev_, 2, 131, 4, 64, 2, 128, true, 5e-3);  // two full chunks and a partial one, G = 2
  check_ssd(host_, *dev_, 1, 64, 2, 5, 1, 7, false, 5e-3);
}

// Inputs the cuBLAS products cannot read as rows (a stride along P) are refused before any work, with a message
// naming them; the outputs are left as they were.
TEST_F(TrainOpsCuda, SsdScanRefusesInputsWithoutUnitStride) {
  const int64_t B = 1, L = 5, H = 2, P = 3, G = 1, N = 4;
  auto wide = to<Cuda>(rand_host<4>({B, L, H, 2 * P}, 1));  // x: every other element of the last dimension
  TensorView<const float, 4, Cuda> x(wide.data(), {B, L, H, P}, {L * H * 2 * P, H * 2 * P, 2 * P, 2});
  auto dt = to<Cuda>(rand_host<3>({B, L, H}, 2, 0.01f, 0.5f));
  auto A = to<Cuda>(rand_host<1>({H}, 3, -2.0f, -0.1f));
  auto Bm = to<Cuda>(rand_host<4>({B, L, G, N}, 4)), Cm = to<Cuda>(rand_host<4>({B, L, G, N}, 5));
  auto dy = to<Cuda>(rand_host<4>({B, L, H, P}, 6));
  GradPair<4> dx({B, L, H, P}, 10), dB({B, L, G, N}, 11), dC({B, L, G, N}, 12);
  GradPair<3> ddt({B, L, H}, 13);
  GradPair<1> dA({H}, 14);
  try {
    ssd_scan_backward(*dev_, x, dt.cview(), A.cview(), Bm.cview(), Cm.cview(), TensorView<const float, 1, Cuda>{},
                      dy.cview(), dx.dev.view(), ddt.dev.view(), dA.dev.view(), dB.dev.view(), dC.dev.view(),
                      TensorView<float, 1, Cuda>{}, GradientMode::Overwrite);
    ADD_FAILURE() << "a stride of 2 along P was accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("unit stride along their last dimension"), std::string::npos) << err.what();
  }
  EXPECT_EQ(dx.rel_l2(), 0.0) << "dx was written";  // both sides still hold the same starting values
}

void check_selective(Context<Host>& host, Context<Cuda>& dev, int64_t B, int64_t L, int64_t E, int64_t N, bool gated) {
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
    selective_scan_backward(host, x, dt, A, Bm, Cm, gated ? D.cview() : TensorView<const float, 1, Host>{},
                            gated ? z.cview() : TensorView<const float, 3, Host>{}, dy, dx.host, ddt.host, dA.host,
                            dB.host, dC.host, gated ? dD.host.view() : TensorView<float, 1, Host>{},
                            gated ? dz.host.view() : TensorView<float, 3, Host>{}, mode);
    selective_scan_backward(dev, to<Cuda>(x), to<Cuda>(dt), to<Cuda>(A), to<Cuda>(Bm), to<Cuda>(Cm),
                            gated ? Dd.cview() : TensorView<const float, 1, Cuda>{},
                            gated ? zd.cview() : TensorView<const float, 3, Cuda>{}, to<Cuda>(dy), dx.dev, ddt.dev,
                            dA.dev, dB.dev, dC.dev, gated ? dD.dev.view() : TensorView<float, 1, Cuda>{},
                            gated ? dz.dev.view() : TensorView<float, 3, Cuda>{}, mode);
    const std::string what = std::string("selective (gated = ") + (gated ? "1) " : "0) ") + name(mode);
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

TEST_F(TrainOpsCuda, SelectiveScan) {
  check_selective(host_, *dev_, 2, 6, 5, 3, true);
  check_selective(host_, *dev_, 3, 41, 131, 16, true);  // E crosses a 128-thread block
  check_selective(host_, *dev_, 2, 23, 13, 5, false);
}

}  // namespace
}  // namespace bimamba::test
