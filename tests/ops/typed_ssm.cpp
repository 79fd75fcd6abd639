// ssd_scan (chunk sizes 1, 7, 256; strided inputs; initial and final states), ssd_step and the Mamba-1
// selective scan (prefill and step) against the sequential double references, on odd shapes.
#include <bimamba/ops/reference/selective_scan.hpp>
#include <bimamba/ops/reference/ssd.hpp>
#include <bimamba/ops/selective_scan.hpp>
#include <bimamba/ops/ssd_scan.hpp>
#include <bimamba/ops/ssd_step.hpp>

#include "ops_test_util.hpp"

namespace bimamba::test {
namespace {

template <class Backend>
class Ssm : public BackendTest<Backend> {};
TYPED_TEST_SUITE(Ssm, Backends);

// Float32 recurrences over ~20 steps against double: a few ulp per step, ~1e-6 relative at most.
constexpr double kTol = 1e-5;

struct SsdCase {
  int64_t B = 2, L = 19, H = 4, P = 3, G = 2, N = 5;
  std::vector<float> x, dt, A, Bm, Cm, D, init;
  explicit SsdCase(uint64_t seed) {
    x = random_floats(size_t(B * L * H * P), seed);
    dt = random_floats(size_t(B * L * H), seed + 1, 0.01f, 0.5f);
    A = random_floats(size_t(H), seed + 2, -4.0f, -0.5f);
    Bm = random_floats(size_t(B * L * G * N), seed + 3);
    Cm = random_floats(size_t(B * L * G * N), seed + 4);
    D = random_floats(size_t(H), seed + 5);
    init = random_floats(size_t(B * H * P * N), seed + 6);
  }
  template <class V>
  std::vector<double> slice(const V& v, int64_t b, int64_t per) const {
    return std::vector<double>(v.begin() + b * per, v.begin() + (b + 1) * per);
  }
  // Reference y (B, L, H, P) and final state (B, H, P, N), from `init` when with_init.
  std::pair<std::vector<double>, std::vector<double>> reference(bool with_init) const {
    std::vector<double> y, states;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> s = with_init ? slice(init, b, H * P * N) : std::vector<double>(size_t(H * P * N), 0.0);
      auto yb = reference::ssd(slice(x, b, L * H * P), slice(dt, b, L * H), to_double(A), slice(Bm, b, L * G * N),
                               slice(Cm, b, L * G * N), to_double(D), L, H, P, G, N, s);
      y.insert(y.end(), yb.begin(), yb.end());
      states.insert(states.end(), s.begin(), s.end());
    }
    return {y, states};
  }
};

TYPED_TEST(Ssm, SsdScanMatchesSequentialAtEveryChunkSize) {
  const SsdCase c(100);
  auto& ctx = this->ctx();
  // x lives inside a wider buffer (as a slice of the conv output), so the scan sees a row stride > H*P.
  const int64_t width = c.H * c.P + 3;
  std::vector<float> wide(size_t(c.B * c.L * width), 0.0f);
  for (int64_t r = 0; r < c.B * c.L; ++r)
    for (int64_t i = 0; i < c.H * c.P; ++i) wide[size_t(r * width + 2 + i)] = c.x[size_t(r * c.H * c.P + i)];
  auto wide_d = on<TypeParam, 3>(wide, {c.B, c.L, width});
  auto xv = wide_d.view().narrow(2, 2, c.H * c.P);
  const TensorView<const float, 4, TypeParam> x(xv.data(), {c.B, c.L, c.H, c.P},
                                                {xv.stride(0), xv.stride(1), c.P, 1});
  auto dt = on<TypeParam, 3>(c.dt, {c.B, c.L, c.H});
  auto A = on<TypeParam, 1>(c.A, {c.H});
  auto Bm = on<TypeParam, 4>(c.Bm, {c.B, c.L, c.G, c.N});
  auto Cm = on<TypeParam, 4>(c.Cm, {c.B, c.L, c.G, c.N});
  auto D = on<TypeParam, 1>(c.D, {c.H});
  auto init = on<TypeParam, 4>(c.init, {c.B, c.H, c.P, c.N});
  for (bool with_init : {false, true}) {
    const auto [ref_y, ref_state] = c.reference(with_init);
    for (int64_t chunk : {1, 7, 256}) {
      Tensor<float, 4, TypeParam> y({c.B, c.L, c.H, c.P}), final_state({c.B, c.H, c.P, c.N});
      ssd_scan(ctx, x, dt, A, Bm, Cm, D, chunk, y, with_init ? init.cview() : TensorView<const float, 4, TypeParam>{},
               final_state);
      EXPECT_LT(relative_l2(to_vector(y), ref_y), kTol) << "chunk " << chunk << " init " << with_init;
      EXPECT_LT(relative_l2(to_vector(final_state), ref_state), kTol) << "chunk " << chunk << " init " << with_init;
    }
  }
}

TEST(SsmHost, SsdScanThreadedEqualsSingleThreaded) {
  // Large enough for several workers; every (batch, head) pair runs the same code on any thread: bit-equal.
  const int64_t B = 2, L = 64, H = 8, P = 8, G = 2, N = 16;
  const auto x = random_floats(size_t(B * L * H * P), 1), dt = random_floats(size_t(B * L * H), 2, 0.01f, 0.3f),
             A = random_floats(size_t(H), 3, -3.0f, -0.5f), Bm = random_floats(size_t(B * L * G * N), 4),
             Cm = random_floats(size_t(B * L * G * N), 5);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    Context<Host> ctx(threads);
    Tensor<float, 4, Host> y({B, L, H, P});
    ssd_scan(ctx, tensor_from<float, 4>(x, {B, L, H, P}), tensor_from<float, 3>(dt, {B, L, H}), tensor_from<float, 1>(A, {H}),
             tensor_from<float, 4>(Bm, {B, L, G, N}), tensor_from<float, 4>(Cm, {B, L, G, N}), {}, 16, y);
    results.push_back(to_vector(y));
  }
  EXPECT_EQ(results[0], results[1]);
}

TYPED_TEST(Ssm, SsdScanSplitSequenceContinuesFromState) {
  const SsdCase c(200);
  auto& ctx = this->ctx();
  auto x = on<TypeParam, 4>(c.x, {c.B, c.L, c.H, c.P});
  auto dt = on<TypeParam, 3>(c.dt, {c.B, c.L, c.H});
  auto A = on<TypeParam, 1>(c.A, {c.H});
  auto Bm = on<TypeParam, 4>(c.Bm, {c.B, c.L, c.G, c.N});
  auto Cm = on<TypeParam, 4>(c.Cm, {c.B, c.L, c.G, c.N});
  const int64_t first = 8, rest = c.L - first;
  Tensor<float, 4, TypeParam> y1({c.B, first, c.H, c.P}), y2({c.B, rest, c.H, c.P}), s1({c.B, c.H, c.P, c.N}),
      s2({c.B, c.H, c.P, c.N});
  ssd_scan(ctx, x.view().narrow(1, 0, first), dt.view().narrow(1, 0, first), A, Bm.view().narrow(1, 0, first),
           Cm.view().narrow(1, 0, first), {}, 3, y1, {}, s1);
  ssd_scan(ctx, x.view().narrow(1, first, rest), dt.view().narrow(1, first, rest), A, Bm.view().narrow(1, first, rest),
           Cm.view().narrow(1, first, rest), {}, 4, y2, s1, s2);
  SsdCase no_d = c;
  no_d.D.clear();
  const auto [ref_y, ref_state] = no_d.reference(false);
  auto h1 = to_vector(y1), h2 = to_vector(y2);
  std::vector<float> got;
  for (int64_t b = 0; b < c.B; ++b) {
    got.insert(got.end(), h1.begin() + b * first * c.H * c.P, h1.begin() + (b + 1) * first * c.H * c.P);
    got.insert(got.end(), h2.begin() + b * rest * c.H * c.P, h2.begin() + (b + 1) * rest * c.H * c.P);
  }
  EXPECT_LT(relative_l2(got, ref_y), kTol);
  EXPECT_LT(relative_l2(to_vector(s2), ref_state), kTol);
}

TYPED_TEST(Ssm, SsdStepMatchesSequential) {
  const SsdCase c(300);
  auto& ctx = this->ctx();
  auto A = on<TypeParam, 1>(c.A, {c.H});
  auto D = on<TypeParam, 1>(c.D, {c.H});
  auto state = on<TypeParam, 4>(c.init, {c.B, c.H, c.P, c.N});
  auto xh = tensor_from<float, 4>(c.x, {c.B, c.L, c.H, c.P});
  auto dth = tensor_from<float, 3>(c.dt, {c.B, c.L, c.H});
  auto bh = tensor_from<float, 4>(c.Bm, {c.B, c.L, c.G, c.N});
  auto ch = tensor_from<float, 4>(c.Cm, {c.B, c.L, c.G, c.N});
  std::vector<float> got(size_t(c.B * c.L * c.H * c.P));
  Tensor<float, 3, TypeParam> y({c.B, c.H, c.P});
  for (int64_t t = 0; t < c.L; ++t) {
    // Token t of every sequence, as contiguous step inputs.
    Tensor<float, 3, Host> xt({c.B, c.H, c.P}), bt({c.B, c.G, c.N}), ct({c.B, c.G, c.N});
    Tensor<float, 2, Host> dtt({c.B, c.H});
    for (int64_t b = 0; b < c.B; ++b) {
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t p = 0; p < c.P; ++p) xt(b, h, p) = xh(b, t, h, p);
      for (int64_t h = 0; h < c.H; ++h) dtt(b, h) = dth(b, t, h);
      for (int64_t g = 0; g < c.G; ++g)
        for (int64_t n = 0; n < c.N; ++n) bt(b, g, n) = bh(b, t, g, n), ct(b, g, n) = ch(b, t, g, n);
    }
    ssd_step(ctx, to<TypeParam>(xt), to<TypeParam>(dtt), A, to<TypeParam>(bt), to<TypeParam>(ct), D, state, y);
    auto yh = to_host(y);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < c.H * c.P; ++i) got[size_t((b * c.L + t) * c.H * c.P + i)] = yh.data()[b * c.H * c.P + i];
  }
  const auto [ref_y, ref_state] = c.reference(true);
  EXPECT_LT(relative_l2(got, ref_y), kTol);
  EXPECT_LT(relative_l2(to_vector(state), ref_state), kTol);
}

TYPED_TEST(Ssm, SelectiveScanPrefillAndStepMatchSequential) {
  const int64_t B = 2, L = 11, E = 7, N = 3;
  const auto x = random_floats(size_t(B * L * E), 1), dt = random_floats(size_t(B * L * E), 2, 0.01f, 0.5f),
             A = random_floats(size_t(E * N), 3, -4.0f, -0.5f), Bm = random_floats(size_t(B * L * N), 4),
             Cm = random_floats(size_t(B * L * N), 5), D = random_floats(size_t(E), 6), z = random_floats(size_t(B * L * E), 7),
             init = random_floats(size_t(B * E * N), 8);
  auto& ctx = this->ctx();
  auto xd = on<TypeParam, 3>(x, {B, L, E});
  auto dtd = on<TypeParam, 3>(dt, {B, L, E});
  auto Ad = on<TypeParam, 2>(A, {E, N});
  auto Bd = on<TypeParam, 3>(Bm, {B, L, N});
  auto Cd = on<TypeParam, 3>(Cm, {B, L, N});
  auto Dd = on<TypeParam, 1>(D, {E});
  auto zd = on<TypeParam, 3>(z, {B, L, E});
  auto initd = on<TypeParam, 3>(init, {B, E, N});
  Tensor<float, 3, TypeParam> y({B, L, E}), final_state({B, E, N});
  selective_scan(ctx, xd, dtd, Ad, Bd, Cd, Dd, zd, y, initd, final_state);
  std::vector<double> ref_y, ref_state;
  auto sl = [](const std::vector<float>& v, int64_t b, int64_t per) {
    return std::vector<double>(v.begin() + b * per, v.begin() + (b + 1) * per);
  };
  for (int64_t b = 0; b < B; ++b) {
    auto s = sl(init, b, E * N);
    auto yb = reference::selective_scan(sl(x, b, L * E), sl(dt, b, L * E), to_double(A), sl(Bm, b, L * N), sl(Cm, b, L * N),
                                        to_double(D), sl(z, b, L * E), L, E, N, s);
    ref_y.insert(ref_y.end(), yb.begin(), yb.end());
    ref_state.insert(ref_state.end(), s.begin(), s.end());
  }
  EXPECT_LT(relative_l2(to_vector(y), ref_y), kTol);
  EXPECT_LT(relative_l2(to_vector(final_state), ref_state), kTol);

  // Step: token by token from the same initial state.
  auto state = on<TypeParam, 3>(init, {B, E, N});
  std::vector<float> got(size_t(B * L * E));
  Tensor<float, 2, TypeParam> ys({B, E});
  for (int64_t t = 0; t < L; ++t) {
    Tensor<float, 2, Host> xt({B, E}), dtt({B, E}), zt({B, E}), bt({B, N}), ct({B, N});
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t e = 0; e < E; ++e) {
        const size_t i = size_t((b * L + t) * E + e);
        xt(b, e) = x[i], dtt(b, e) = dt[i], zt(b, e) = z[i];
      }
      for (int64_t n = 0; n < N; ++n) bt(b, n) = Bm[size_t((b * L + t) * N + n)], ct(b, n) = Cm[size_t((b * L + t) * N + n)];
    }
    selective_scan_step(ctx, to<TypeParam>(xt), to<TypeParam>(dtt), Ad, to<TypeParam>(bt), to<TypeParam>(ct), Dd,
                        to<TypeParam>(zt), state, ys);
    auto yh = to_host(ys);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e) got[size_t((b * L + t) * E + e)] = yh(b, e);
  }
  EXPECT_LT(relative_l2(got, ref_y), kTol);
  EXPECT_LT(relative_l2(to_vector(state), ref_state), kTol);
}

}  // namespace
}  // namespace bimamba::test
