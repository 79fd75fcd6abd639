// binary_linear on TiledSigns (the quantized shuffle kernel): the layout round-trips bit for bit, the result
// stays within the proven quantization bound of the double reference on odd shapes, padding bits do not
// leak, the SIMD paths this build has (AVX2, AVX-512BW) are bit-identical to the portable scalar kernel, and
// NaN propagates.
#include "test_support.hpp"

#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/reference/binary_linear.hpp>

namespace bimamba {
namespace {

struct Case {
  int64_t T, in, out;
  std::vector<float> x, w, alpha, beta;
  Case(int64_t T_, int64_t in_, int64_t out_, uint64_t seed)
      : T(T_), in(in_), out(out_), x(test::random_floats(size_t(T * in), seed, -2, 2)),
        w(test::random_floats(size_t(out * in), seed + 1)), alpha(test::random_floats(size_t(in), seed + 2, 0.01f, 1)),
        beta(test::random_floats(size_t(in), seed + 3, -0.2f, 0.2f)) {}

  std::vector<float> run(Context<Host>& ctx, const TiledSigns& s) const {
    Tensor<float, 2, Host> y({T, out});
    binary_linear(ctx, tensor_from<float, 2>(x, {T, in}), s, tensor_from<float, 1>(alpha, {in}),
                  tensor_from<float, 1>(beta, {in}), y);
    return to_vector(y);
  }
  std::vector<double> reference(const BitTensor<uint32_t, Host>& bits) const {
    return reference::binary_linear(std::vector<double>(x.begin(), x.end()), T, in,
                                    reference::unpack_sign_words(bits.data(), out, in), out,
                                    std::vector<double>(alpha.begin(), alpha.end()),
                                    std::vector<double>(beta.begin(), beta.end()));
  }
  // Proven bound per token: each a_j = alpha_j x_j is replaced by d q_j with |a_j - d q_j| <= d / 2, where
  // d = max |a| over its 32-column block / 1023 (the quantization, sum_j d / 2), plus fp32 rounding of the
  // remaining sums, (in + 2) u times the mass of the terms (as for the fp32 kernel).
  std::vector<double> bound() const {
    std::vector<double> out_bound;
    for (int64_t t = 0; t < T; ++t) {
      double quant = 0, mass = 0;
      for (int64_t w0 = 0; w0 < in; w0 += 32) {
        double m = 0;
        for (int64_t j = w0; j < std::min(in, w0 + 32); ++j) m = std::max(m, std::abs(double(alpha[j]) * x[t * in + j]));
        quant += double(std::min<int64_t>(32, in - w0)) * (m / 1023) / 2;
      }
      for (int64_t j = 0; j < in; ++j) mass += std::abs(double(x[t * in + j])) * (std::abs(alpha[j]) + std::abs(beta[j]));
      out_bound.push_back(quant + double(in + 2) * std::ldexp(1.0, -24) * (mass + quant));
    }
    return out_bound;
  }
};

BitTensor<uint32_t, Host> signs_of(const Case& c) {
  auto weights = tensor_from<float, 2>(c.w, {c.out, c.in});
  return pack_signs<uint32_t>(weights.cview());
}

TEST(TiledSigns, RoundTripsBitForBit) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {31, 45}, {33, 64}, {97, 259}}) {
    BitTensor<uint32_t, Host> bits(rows, cols);
    std::mt19937 rng(uint32_t(rows * 1000 + cols));
    for (int64_t k = 0; k < rows * bits.words_per_row(); ++k) bits.data()[k] = rng();  // padding bits too
    TiledSigns tiled(bits.cview());
    EXPECT_EQ(tiled.tiles(), (rows + 31) / 32);
    EXPECT_EQ(tiled.storage_bytes(), size_t(tiled.tiles() * 32 * bits.words_per_row() * 4));
    BitTensor<uint32_t, Host> back(rows, cols);
    tiled.to_bits(back.view());
    for (int64_t k = 0; k < rows * bits.words_per_row(); ++k) ASSERT_EQ(back.data()[k], bits.data()[k]) << k;
  }
}

TEST(BinaryLinearTiled, WithinQuantizationBoundOnOddShapes) {
  Context<Host> ctx;
  for (int64_t T : {1, 3, 17})
    for (auto [in, out] :
         {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {100, 31}, {259, 65}, {1027, 97}, {300, 1447}}) {
      const Case c(T, in, out, uint64_t(T * 100000 + in * 100 + out));  // 1447 rows: 46 tiles over the workers
      const auto bits = signs_of(c);
      const auto y = c.run(ctx, TiledSigns(bits.cview()));
      const auto ref = c.reference(bits);
      const auto bound = c.bound();
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < out; ++i)
          ASSERT_NEAR(y[size_t(t * out + i)], ref[size_t(t * out + i)], bound[size_t(t)])
              << "T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
    }
}

TEST(BinaryLinearTiled, ErrorIsTheQuantizationError) {
  // Rounding a_j to the grid of step d (d = block max / 1023) leaves errors e_j that behave as uniform on
  // [-d/2, d/2]: each output's error sum_j s_ij e_j has expected square sum_j d^2 / 12 over random signs.
  // The measured mean square error over 4 x 257 outputs must be that prediction within [0.7, 1.4] (a 5%
  // sampling spread expected): a kernel with extra error (a wrong scale, lost low bytes) fails, and so would
  // one that silently stopped quantizing. Measured: rel. L2 error 6.8e-4 at max / rms = 2.8 per block.
  Context<Host> ctx;
  const Case c(4, 1536, 257, 99);
  const auto bits = signs_of(c);
  const auto y = c.run(ctx, TiledSigns(bits.cview()));
  const auto ref = c.reference(bits);
  double measured = 0, predicted = 0;
  for (int64_t t = 0; t < c.T; ++t) {
    for (int64_t i = 0; i < c.out; ++i) measured += std::pow(y[size_t(t * c.out + i)] - ref[size_t(t * c.out + i)], 2);
    for (int64_t w0 = 0; w0 < c.in; w0 += 32) {
      double m = 0;
      for (int64_t j = w0; j < w0 + 32; ++j) m = std::max(m, std::abs(double(c.alpha[j]) * c.x[t * c.in + j]));
      predicted += double(c.out) * 32 * std::pow(m / 1023, 2) / 12;
    }
  }
  EXPECT_GT(measured / predicted, 0.7);
  EXPECT_LT(measured / predicted, 1.4);
  EXPECT_LT(test::relative_l2(y, ref), 1e-3);  // the headline accuracy of docs/kernels.md
}

TEST(BinaryLinearTiled, PaddingBitsDoNotLeak) {
  Context<Host> ctx;
  const Case c(3, 45, 40, 5);
  const auto bits = signs_of(c);
  BitTensor<uint32_t, Host> dirty(c.out, c.in);
  for (int64_t i = 0; i < c.out; ++i) {
    dirty.view().row(i)[0] = bits.cview().row(i)[0];
    dirty.view().row(i)[1] = bits.cview().row(i)[1] | ~((1u << 13) - 1u);  // the 19 padding bits set to 1
  }
  EXPECT_EQ(c.run(ctx, TiledSigns(bits.cview())), c.run(ctx, TiledSigns(dirty.cview())));
}

TEST(BinaryLinearTiled, SimdPathsBitIdenticalToScalar) {
  const int64_t words = 7;
  std::vector<float> a = test::random_floats(size_t(32 * words), 3, -3, 3);
  a[5] = 40;  // one outlier block
  std::vector<uint8_t> planes(size_t(8 * words * 32));
  std::vector<float> scale(static_cast<size_t>(words));
  detail::shuffle::build_tables(a.data(), words, planes.data(), scale.data());
  std::vector<uint8_t> planes_scalar(planes.size());
  detail::shuffle::build_tables(a.data(), words, planes_scalar.data(), scale.data(), /*force_scalar=*/true);
  EXPECT_EQ(planes, planes_scalar);
  const detail::shuffle::TokenTables tt{planes.data(), scale.data()};
  BitTensor<uint32_t, Host> bits(32, 32 * words);
  std::mt19937 rng(8);
  for (int64_t k = 0; k < 32 * words; ++k) bits.data()[k] = rng();
  TiledSigns tiled(bits.cview());
  float simd[32], scalar[32];
  detail::shuffle::tile_best(tiled.tile(0), words, tt, simd);
  detail::shuffle::tile_scalar(tiled.tile(0), words, tt, scalar);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(simd[i], scalar[i]) << "row " << i;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  BitTensor<uint32_t, Host> bits2(64, 32 * words);
  for (int64_t k = 0; k < 64 * words; ++k) bits2.data()[k] = rng();
  TiledSigns tiled2(bits2.cview());
  float pair[64], one[32];
  detail::shuffle::tile_pair_avx512(tiled2.tile(0), tiled2.tile(1), words, tt, pair, pair + 32);
  for (int r = 0; r < 2; ++r) {
    detail::shuffle::tile_scalar(tiled2.tile(r), words, tt, one);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(pair[32 * r + i], one[i]) << "AVX-512 tile " << r << " row " << i;
  }
#endif
}

TEST(BinaryLinearTiled, NaNActivationGivesNaNRow) {
  Context<Host> ctx;
  Case c(2, 40, 3, 1);
  c.x[size_t(c.in + 7)] = std::nanf("");  // token 1
  const auto y = c.run(ctx, TiledSigns(signs_of(c).cview()));
  for (int64_t i = 0; i < c.out; ++i) {
    EXPECT_FALSE(std::isnan(y[size_t(i)]));
    EXPECT_TRUE(std::isnan(y[size_t(c.out + i)]));
  }
}

}  // namespace
}  // namespace bimamba
