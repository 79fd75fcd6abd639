// linear, causal_conv1d (prefill with and without states, step) and dt_softplus against the double
// references, on odd shapes.
#include <bimamba/ops/causal_conv1d.hpp>
#include <bimamba/ops/dt_softplus.hpp>
#include <bimamba/ops/linear.hpp>
#include <bimamba/ops/reference/causal_conv1d.hpp>
#include <bimamba/ops/reference/dt_softplus.hpp>
#include <bimamba/ops/reference/linear.hpp>

#include "ops_test_util.hpp"

namespace bimamba::test {
namespace {

template <class Backend>
class LinearConv : public BackendTest<Backend> {};
TYPED_TEST_SUITE(LinearConv, Backends);

// Float32 dot products of <= 64 terms against double: ~1e-7 relative; 1e-6 leaves room for the order.
constexpr double kTol = 1e-6;

TYPED_TEST(LinearConv, LinearMatchesReference) {
  // T = 5: many-token split; T = 1: the decode split over output features.
  for (int64_t T : {5, 1}) {
    const int64_t in = 11, out = 70;
    const auto x = random_floats(size_t(T * in), 1), w = random_floats(size_t(out * in), 2), b = random_floats(size_t(out), 3);
    auto xd = on<TypeParam, 2>(x, {T, in});
    auto wd = on<TypeParam, 2>(w, {out, in});
    auto bd = on<TypeParam, 1>(b, {out});
    Tensor<float, 2, TypeParam> y({T, out});
    linear(this->ctx(), xd, wd, bd, y);
    EXPECT_LT(relative_l2(to_vector(y), reference::linear(to_double(x), to_double(w), to_double(b), T, in, out)), kTol);
    linear(this->ctx(), xd, wd, {}, y);
    EXPECT_LT(relative_l2(to_vector(y), reference::linear(to_double(x), to_double(w), {}, T, in, out)), kTol);
  }
}

TYPED_TEST(LinearConv, LinearRejectsMismatchedShapes) {
  Tensor<float, 2, TypeParam> x({2, 3}), w({4, 5}), y({2, 4});
  EXPECT_THROW(linear(this->ctx(), x, w, {}, y), InvalidArgument);
}

TYPED_TEST(LinearConv, ConvPrefillSplitAnywhereEqualsWholeAndStep) {
  const int64_t B = 2, L = 9, C = 5, K = 4;
  const auto x = random_floats(size_t(B * L * C), 4), w = random_floats(size_t(C * K), 5), b = random_floats(size_t(C), 6);
  auto wd = on<TypeParam, 2>(w, {C, K});
  auto bd = on<TypeParam, 1>(b, {C});
  auto xd = on<TypeParam, 3>(x, {B, L, C});
  Tensor<float, 3, TypeParam> y({B, L, C}), state({B, C, K});
  causal_conv1d(this->ctx(), xd, wd, bd, y, Activation::Silu, {}, state);
  const auto y_all = to_vector(y), state_all = to_vector(state);
  for (int64_t bi = 0; bi < B; ++bi) {
    std::vector<double> xs(x.begin() + bi * L * C, x.begin() + (bi + 1) * L * C), ref_state(size_t(C * K), 0.0);
    const auto ref = reference::causal_conv1d(xs, to_double(w), to_double(b), L, C, K, true, ref_state);
    std::vector<float> got(y_all.begin() + bi * L * C, y_all.begin() + (bi + 1) * L * C);
    EXPECT_LT(relative_l2(got, ref), kTol);
    std::vector<float> st(state_all.begin() + bi * C * K, state_all.begin() + (bi + 1) * C * K);
    EXPECT_EQ(relative_l2(st, ref_state), 0.0);  // the state holds copies of inputs: exact
  }
  // Prefill of the first 2 tokens (L < K), then 3 more from its final state, then step the rest.
  auto& ctx = this->ctx();
  Tensor<float, 3, TypeParam> s1({B, C, K}), s2({B, C, K}), y1({B, 2, C}), y2({B, 3, C});
  causal_conv1d(ctx, xd.view().narrow(1, 0, 2), wd, bd, y1, Activation::Silu, {}, s1);
  causal_conv1d(ctx, xd.view().narrow(1, 2, 3), wd, bd, y2, Activation::Silu, s1, s2);
  std::vector<float> got(size_t(B * L * C));
  auto h1 = to_host(y1), h2 = to_host(y2);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t t = 0; t < 2; ++t) got[size_t((bi * L + t) * C + c)] = h1(bi, t, c);
      for (int64_t t = 0; t < 3; ++t) got[size_t((bi * L + 2 + t) * C + c)] = h2(bi, t, c);
    }
  Tensor<float, 2, TypeParam> ys({B, C});
  auto xh = to_host(xd);
  for (int64_t t = 5; t < L; ++t) {
    Tensor<float, 2, Host> xt({B, C});
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t c = 0; c < C; ++c) xt(bi, c) = xh(bi, t, c);
    causal_conv1d_step(ctx, to<TypeParam>(xt), wd, bd, s2, ys, Activation::Silu);
    auto yh = to_host(ys);
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t c = 0; c < C; ++c) got[size_t((bi * L + t) * C + c)] = yh(bi, c);
  }
  // The same float sums in the same order as the whole prefill; the Host prefill's SiLU uses Eigen's
  // vectorized exp (within 2 ulp of expf, which the step uses), so each output may differ by ~2 ulp:
  // relative L2 below 2 * 2^-23 = 2.4e-7 (measured 1.1e-7).
  EXPECT_LT(relative_l2(got, y_all), 2.4e-7);
  EXPECT_EQ(relative_l2(to_vector(s2), state_all), 0.0);  // state = copies of the last K inputs: exact
}

TYPED_TEST(LinearConv, ConvWithoutBiasOrActivation) {
  const int64_t L = 3, C = 2, K = 3;
  const auto x = random_floats(size_t(L * C), 7), w = random_floats(size_t(C * K), 8);
  Tensor<float, 3, TypeParam> y({1, L, C});
  causal_conv1d(this->ctx(), on<TypeParam, 3>(x, {1, L, C}), on<TypeParam, 2>(w, {C, K}), {}, y, Activation::None);
  std::vector<double> state(size_t(C * K), 0.0);
  EXPECT_LT(relative_l2(to_vector(y), reference::causal_conv1d(to_double(x), to_double(w), {}, L, C, K, false, state)), kTol);
}

TYPED_TEST(LinearConv, DtSoftplusClampsAndMatchesReference) {
  const int64_t T = 7, H = 3;
  auto dt = random_floats(size_t(T * H), 9, -25, 25);  // reaches past softplus's linear threshold (20)
  const auto bias = random_floats(size_t(H), 10);
  Tensor<float, 2, TypeParam> out({T, H});
  auto dtd = on<TypeParam, 2>(dt, {T, H});
  auto bd = on<TypeParam, 1>(bias, {H});
  dt_softplus(this->ctx(), dtd, bd, 0.0f, std::numeric_limits<float>::infinity(), out);
  const auto inf = std::numeric_limits<double>::infinity();
  EXPECT_LT(relative_l2(to_vector(out), reference::dt_softplus(to_double(dt), to_double(bias), T, H, 0.0, inf)), kTol);
  dt_softplus(this->ctx(), dtd, bd, 0.01f, 2.0f, out);
  const auto clamped = to_vector(out);
  EXPECT_LT(relative_l2(clamped, reference::dt_softplus(to_double(dt), to_double(bias), T, H, 0.01, 2.0)), kTol);
  for (float v : clamped) EXPECT_TRUE(v >= 0.01f && v <= 2.0f) << v;
}

}  // namespace
}  // namespace bimamba::test
