// binary_linear (FBI-Linear forward on packed signs) against the double reference, on any backend:
// odd shapes (in not a multiple of 32 or 8, out odd, T in {1, 3, 17}), padding bits set to 1 change nothing,
// strided x / y, and shape errors name the tensor; the same for bf16 activations. The fused forms of
// ops/binary_linear_fused.hpp (input RMSNorm; accumulate into y) against the same reference applied to the
// normalized input / added to y.
#include "test_support.hpp"

#include <type_traits>

#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/binary_linear_fused.hpp>
#include <bimamba/ops/reference/binary_linear.hpp>

namespace bimamba {
namespace {

// A random problem: latent weights (their signs are S), x, alpha > 0, beta of either sign.
struct Problem {
  int64_t T, in, out;
  std::vector<float> x, w, alpha, beta;
  Problem(int64_t T_, int64_t in_, int64_t out_, uint64_t seed)
      : T(T_), in(in_), out(out_), x(test::random_floats(size_t(T * in), seed, -2, 2)),
        w(test::random_floats(size_t(out * in), seed + 1)), alpha(test::random_floats(size_t(in), seed + 2, 0.01f, 1)),
        beta(test::random_floats(size_t(in), seed + 3, -0.2f, 0.2f)) {}

  std::vector<double> reference(const BitTensor<uint32_t, Host>& bits) const {
    const auto s = reference::unpack_sign_words(bits.data(), out, in);
    return reference::binary_linear(std::vector<double>(x.begin(), x.end()), T, in, s, out,
                                    std::vector<double>(alpha.begin(), alpha.end()),
                                    std::vector<double>(beta.begin(), beta.end()));
  }
  // Worst-case bound of fp32 evaluation: recursive summation of n = in + 1 terms has error <= n u sum|terms|
  // (u = 2^-24); each term x_j alpha_j / x_j beta_j carries one more rounding, hence n + 2.
  std::vector<double> fp32_bound() const {
    std::vector<double> bound(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      double mass = 0;
      for (int64_t j = 0; j < in; ++j) mass += std::abs(double(x[t * in + j])) * (std::abs(alpha[j]) + std::abs(beta[j]));
      bound[size_t(t)] = double(in + 2) * std::ldexp(1.0, -24) * mass;
    }
    return bound;
  }
};

template <class Backend>
class BinaryLinear : public test::BackendTest<Backend> {
 protected:
  // y computed on the backend from host data (signs given packed on the host).
  std::vector<float> run(const Problem& p, const BitTensor<uint32_t, Host>& bits) {
    auto x = to<Backend>(tensor_from<float, 2>(p.x, {p.T, p.in}));
    auto alpha = to<Backend>(tensor_from<float, 1>(p.alpha, {p.in}));
    auto beta = to<Backend>(tensor_from<float, 1>(p.beta, {p.in}));
    auto s = to<Backend>(bits);
    Tensor<float, 2, Backend> y({p.T, p.out});
    binary_linear<Backend>(this->ctx(), x, s.cview(), alpha, beta, y);
    return to_vector(y);
  }
};
TYPED_TEST_SUITE(BinaryLinear, test::Backends);

TYPED_TEST(BinaryLinear, MatchesReferenceOnOddShapes) {
  for (int64_t T : {1, 3, 17})
    for (auto [in, out] :  // 300 x 257: enough rows for several workers on a multi-core Host
         {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {100, 31}, {259, 17}, {1027, 65}, {300, 257}}) {
      const Problem p(T, in, out, uint64_t(T * 100000 + in * 100 + out));
      auto weights = tensor_from<float, 2>(p.w, {out, in});
      const auto bits = pack_signs<uint32_t>(weights.cview());
      const auto y = this->run(p, bits);
      const auto ref = p.reference(bits);
      const auto bound = p.fp32_bound();
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < out; ++i)
          ASSERT_NEAR(y[size_t(t * out + i)], ref[size_t(t * out + i)], bound[size_t(t)])
              << "T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
    }
}

TYPED_TEST(BinaryLinear, PaddingBitsDoNotLeak) {
  const int64_t T = 3, in = 45, out = 9;  // 45 = 32 + 13: 19 padding bits per row
  const Problem p(T, in, out, 7);
  auto weights = tensor_from<float, 2>(p.w, {out, in});
  const auto bits = pack_signs<uint32_t>(weights.cview());
  BitTensor<uint32_t, Host> dirty(out, in);
  for (int64_t i = 0; i < out; ++i) {
    dirty.view().row(i)[0] = bits.cview().row(i)[0];
    dirty.view().row(i)[1] = bits.cview().row(i)[1] | ~((1u << 13) - 1u);  // all padding bits set to 1 (+1)
  }
  const auto clean_y = this->run(p, bits);
  const auto dirty_y = this->run(p, dirty);
  for (size_t k = 0; k < clean_y.size(); ++k) ASSERT_EQ(clean_y[k], dirty_y[k]) << "at " << k;
}

TYPED_TEST(BinaryLinear, StridedRowsOfXAndY) {
  const int64_t T = 4, in = 70, out = 11;
  const Problem p(T, in, out, 11);
  auto weights = tensor_from<float, 2>(p.w, {out, in});
  const auto bits = pack_signs<uint32_t>(weights.cview());
  // x rows live every 80 floats, y rows every 16.
  std::vector<float> xw(size_t(T * 80), 1e30f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < in; ++j) xw[size_t(t * 80 + j)] = p.x[size_t(t * in + j)];
  auto xbig = to<TypeParam>(tensor_from<float, 2>(xw, {T, 80}));
  auto alpha = to<TypeParam>(tensor_from<float, 1>(p.alpha, {in}));
  auto beta = to<TypeParam>(tensor_from<float, 1>(p.beta, {in}));
  auto s = to<TypeParam>(bits);
  Tensor<float, 2, TypeParam> ybig({T, 16});
  binary_linear<TypeParam>(this->ctx(), xbig.cview().narrow(1, 0, in), s.cview(), alpha, beta,
                           ybig.view().narrow(1, 0, out));
  const auto y = to_vector(ybig);
  const auto ref = p.reference(bits);
  const auto bound = p.fp32_bound();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < out; ++i) ASSERT_NEAR(y[size_t(t * 16 + i)], ref[size_t(t * out + i)], bound[size_t(t)]);
}

TYPED_TEST(BinaryLinear, ShapeErrorsNameTheTensor) {
  Tensor<float, 2, TypeParam> x({2, 40}), y({2, 5}), ybad({2, 6});
  Tensor<float, 1, TypeParam> alpha({40}), beta({40}), beta_bad({39});
  BitTensor<uint32_t, TypeParam> s(5, 40);
  try {
    binary_linear<TypeParam>(this->ctx(), x, s.cview(), alpha, beta, ybad);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("binary_linear: y"), std::string::npos) << e.what();
  }
  try {
    binary_linear<TypeParam>(this->ctx(), x, s.cview(), alpha, beta_bad, y);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("binary_linear: beta"), std::string::npos) << e.what();
  }
  // The norm fusions name their norm weight: one of the wrong length, and an empty one.
  Tensor<float, 1, TypeParam> w_bad({39});
  try {
    binary_linear_rms_normed_accumulate<TypeParam>(this->ctx(), x, w_bad, 1e-5f, s.cview(), alpha, beta, y);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("binary_linear_rms_normed_accumulate: norm_weight"), std::string::npos)
        << e.what();
  }
  try {
    binary_linear_rms_normed<TypeParam>(this->ctx(), x, {}, 1e-5f, s.cview(), alpha, beta, y);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("binary_linear_rms_normed: the norm weight is empty"), std::string::npos)
        << e.what();
  }
}

// bf16 x and y (alpha, beta float): x is rounded to bf16 first and the reference takes float(x_bf16), the
// op's exact input. Tolerance: y is the fp32 result y32 rounded once to bf16, |y - y32| <= 2^-8 |y32| (round
// to nearest with 8 significant bits), and y32 is within the fp32 bound of MatchesReferenceOnOddShapes, so
//   |y - ref| <= bound + 2^-8 (|ref| + bound).
// x rows at a stride of in + 3 and y rows at out + 5 for T = 3 and 17 (odd strides: the scalar loads and stores).
// On Host, y is also bit-for-bit the float op on float(x_bf16), rounded (ops/binary_linear.hpp).
TYPED_TEST(BinaryLinear, Bf16ActivationsMatchReferenceOnOddShapes) {
  for (int64_t T : {1, 3, 17})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {100, 31}, {259, 17}, {1027, 65},
                           {300, 257}, {2052, 9}}) {
      Problem p(T, in, out, uint64_t(T * 100000 + in * 100 + out + 1));
      const bool strided = T > 1;
      const int64_t ldx = strided ? in + 3 : in, ldy = strided ? out + 5 : out;
      std::vector<bfloat16> xb(size_t(T * ldx), bfloat16(1e30f));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < in; ++j) {
          float& v = p.x[size_t(t * in + j)];
          xb[size_t(t * ldx + j)] = bfloat16(v);
          v = float(xb[size_t(t * ldx + j)]);
        }
      auto weights = tensor_from<float, 2>(p.w, {out, in});
      const auto bits = pack_signs<uint32_t>(weights.cview());
      auto x = to<TypeParam>(tensor_from<bfloat16, 2>(xb, {T, ldx}));
      auto alpha = to<TypeParam>(tensor_from<float, 1>(p.alpha, {in}));
      auto beta = to<TypeParam>(tensor_from<float, 1>(p.beta, {in}));
      auto s = to<TypeParam>(bits);
      Tensor<bfloat16, 2, TypeParam> yd({T, ldy});
      binary_linear<TypeParam>(this->ctx(), x.cview().narrow(1, 0, in), s.cview(), alpha, beta,
                               yd.view().narrow(1, 0, out));
      const auto y = to_vector(yd);
      const auto ref = p.reference(bits);
      const auto bound = p.fp32_bound();
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < out; ++i) {
          const double r = ref[size_t(t * out + i)], b = bound[size_t(t)];
          ASSERT_NEAR(float(y[size_t(t * ldy + i)]), r, b + std::ldexp(std::abs(r) + b, -8))
              << "T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
        }
      if constexpr (std::is_same_v<TypeParam, Host>) {
        const auto yf = this->run(p, bits);  // the float op on float(x_bf16)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < out; ++i)
            ASSERT_EQ(y[size_t(t * ldy + i)].bits, bfloat16(yf[size_t(t * out + i)]).bits)
                << "T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
      }
    }
}

TYPED_TEST(BinaryLinear, Bf16ShapeErrorsNameTheTensor) {
  Tensor<bfloat16, 2, TypeParam> x({2, 40}), y({2, 5}), ybad({2, 6});
  Tensor<float, 1, TypeParam> alpha({40}), beta({40}), alpha_bad({41});
  BitTensor<uint32_t, TypeParam> s(5, 40), s_bad(5, 41);
  auto expect_error = [&](auto&& call, const std::string& what) {
    try {
      call();
      FAIL() << "no exception, expected " << what;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error([&] { binary_linear<TypeParam>(this->ctx(), x, s.cview(), alpha, beta, ybad); }, "binary_linear: y");
  expect_error([&] { binary_linear<TypeParam>(this->ctx(), x, s.cview(), alpha_bad, beta, y); }, "binary_linear: alpha");
  expect_error([&] { binary_linear<TypeParam>(this->ctx(), x, s_bad.cview(), alpha, beta, y); },
               "binary_linear: signs have 41 columns, x has 40");
  Tensor<bfloat16, 2, TypeParam> wide({2, 80});
  const TensorView<const bfloat16, 2, TypeParam> every_other(wide.data(), {2, 40}, {80, 2});  // inner stride 2
  expect_error([&] { binary_linear<TypeParam>(this->ctx(), every_other, s.cview(), alpha, beta, y); },
               "binary_linear: x has inner stride 2, must be 1");
}

// The reference input of the norm fusions: x / sqrt(mean x^2 + eps) * w in double, rounded to float like the
// problem's x.
void normalize_rows(Problem& p, const std::vector<float>& norm_w, float eps) {
  for (int64_t t = 0; t < p.T; ++t) {
    double ss = 0;
    for (int64_t j = 0; j < p.in; ++j) ss += double(p.x[size_t(t * p.in + j)]) * p.x[size_t(t * p.in + j)];
    const double r = 1.0 / std::sqrt(ss / double(p.in) + eps);
    for (int64_t j = 0; j < p.in; ++j)
      p.x[size_t(t * p.in + j)] = float(p.x[size_t(t * p.in + j)] * r * norm_w[size_t(j)]);
  }
}

// The fp32 bound of binary_linear on the normalized input, plus the norm's own rounding, which scales every
// output alike: the float sum of in squares (<= in u relative, halved by the square root), rsqrt (<= 2 ulp)
// and the products with r and w (2 u), i.e. (in / 2 + 4) u |y| <= (in / 2 + 4) u * mass.
std::vector<double> normed_bound(const Problem& p) {
  auto bound = p.fp32_bound();
  for (auto& b : bound) b *= double(p.in + 2 + p.in / 2 + 4) / double(p.in + 2);
  return bound;
}

TYPED_TEST(BinaryLinear, RmsNormedInputMatchesReferenceOfTheNormalizedInput) {
  // T = 1 .. 4: the one-launch decode kernel on Cuda; T = 17: the composition.
  for (int64_t T : {1, 2, 4, 17})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{7, 5}, {259, 17}, {1027, 65}, {2048, 300}}) {
      Problem p(T, in, out, uint64_t(T * 1000 + in + out));
      const auto norm_w = test::random_floats(size_t(in), 99, 0.5f, 1.5f);
      const float eps = 1e-5f;
      auto weights = tensor_from<float, 2>(p.w, {out, in});
      const auto bits = pack_signs<uint32_t>(weights.cview());
      auto x = to<TypeParam>(tensor_from<float, 2>(p.x, {T, in}));
      auto w = to<TypeParam>(tensor_from<float, 1>(norm_w, {in}));
      auto alpha = to<TypeParam>(tensor_from<float, 1>(p.alpha, {in}));
      auto beta = to<TypeParam>(tensor_from<float, 1>(p.beta, {in}));
      auto s = to<TypeParam>(bits);
      Tensor<float, 2, TypeParam> yd({T, out});
      binary_linear_rms_normed<TypeParam>(this->ctx(), x, w, eps, s.cview(), alpha, beta, yd);
      const auto y = to_vector(yd);
      normalize_rows(p, norm_w, eps);
      const auto ref = p.reference(bits);
      const auto bound = normed_bound(p);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < out; ++i)
          ASSERT_NEAR(y[size_t(t * out + i)], ref[size_t(t * out + i)], bound[size_t(t)])
              << "T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
    }
}

// y = y0 + ref within the product's bound plus the rounding of the final add (u of the sum, 2^-24 relative).
void expect_accumulated(const Problem& p, const std::vector<float>& y, const std::vector<float>& y0,
                        const std::vector<double>& ref, const std::vector<double>& bound) {
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t i = 0; i < p.out; ++i) {
      const size_t k = size_t(t * p.out + i);
      ASSERT_NEAR(y[k], y0[k] + ref[k], bound[size_t(t)] + std::abs(y0[k] + ref[k]) * std::ldexp(1.0, -23))
          << "T=" << p.T << " in=" << p.in << " out=" << p.out << " at (" << t << ", " << i << ")";
    }
}

TYPED_TEST(BinaryLinear, AccumulateAddsToY) {
  for (int64_t T : {1, 3, 17})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{33, 3}, {1027, 65}, {4096, 301}}) {
      const Problem p(T, in, out, uint64_t(T * 7000 + in + out));
      const auto y0 = test::random_floats(size_t(T * out), 5, -3, 3);
      auto weights = tensor_from<float, 2>(p.w, {out, in});
      const auto bits = pack_signs<uint32_t>(weights.cview());
      auto x = to<TypeParam>(tensor_from<float, 2>(p.x, {T, in}));
      auto alpha = to<TypeParam>(tensor_from<float, 1>(p.alpha, {in}));
      auto beta = to<TypeParam>(tensor_from<float, 1>(p.beta, {in}));
      auto s = to<TypeParam>(bits);
      auto yd = to<TypeParam>(tensor_from<float, 2>(y0, {T, out}));
      binary_linear_accumulate<TypeParam>(this->ctx(), x, s.cview(), alpha, beta, yd);
      const auto y = to_vector(yd);
      expect_accumulated(p, y, y0, p.reference(bits), p.fp32_bound());
    }
}

TYPED_TEST(BinaryLinear, RmsNormedAccumulateAddsTheProductOfTheNormalizedInput) {
  // T = 1 .. 4: the one-launch decode kernel on Cuda (the out_proj of a decode step with one norm group:
  // 5120 inputs at the 2.7B shape); T = 17: the composition.
  for (int64_t T : {1, 2, 4, 17})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{7, 5}, {1027, 65}, {5120, 301}}) {
      Problem p(T, in, out, uint64_t(T * 3000 + in + out));
      const auto norm_w = test::random_floats(size_t(in), 98, 0.5f, 1.5f);
      const auto y0 = test::random_floats(size_t(T * out), 6, -3, 3);
      const float eps = 1e-5f;
      auto weights = tensor_from<float, 2>(p.w, {out, in});
      const auto bits = pack_signs<uint32_t>(weights.cview());
      auto x = to<TypeParam>(tensor_from<float, 2>(p.x, {T, in}));
      auto w = to<TypeParam>(tensor_from<float, 1>(norm_w, {in}));
      auto alpha = to<TypeParam>(tensor_from<float, 1>(p.alpha, {in}));
      auto beta = to<TypeParam>(tensor_from<float, 1>(p.beta, {in}));
      auto s = to<TypeParam>(bits);
      auto yd = to<TypeParam>(tensor_from<float, 2>(y0, {T, out}));
      binary_linear_rms_normed_accumulate<TypeParam>(this->ctx(), x, w, eps, s.cview(), alpha, beta, yd);
      const auto y = to_vector(yd);
      normalize_rows(p, norm_w, eps);
      expect_accumulated(p, y, y0, p.reference(bits), normed_bound(p));
    }
}

}  // namespace
}  // namespace bimamba
