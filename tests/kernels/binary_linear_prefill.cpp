// The prefill loop order of binary_linear on TiledSigns (ops/host/binary_linear_prefill.hpp): bit-identical
// to the row-parallel shuffle kernel on random odd shapes and token counts (1 and 2 threads, so token ranges
// and blocks split unevenly), within the proven quantization bound of the double reference, padding bits do
// not leak, strided x / y rows work (the padding columns of y are left alone), and the public entry point
// dispatches to it.
#include "test_support.hpp"

#include <bimamba/ops/binary_linear.hpp>
#include <bimamba/ops/reference/binary_linear.hpp>

namespace bimamba {
namespace {

struct Problem {
  int64_t T, in, out;
  std::vector<float> x, alpha, beta;
  BitTensor<uint32_t, Host> bits;
  Problem(int64_t T_, int64_t in_, int64_t out_, uint64_t seed)
      : T(T_), in(in_), out(out_), x(test::random_floats(size_t(T * in), seed, -2, 2)),
        alpha(test::random_floats(size_t(in), seed + 1, 0.01f, 1)),
        beta(test::random_floats(size_t(in), seed + 2, -0.2f, 0.2f)), bits(out_, in_) {
    auto w = tensor_from<float, 2>(test::random_floats(size_t(out * in), seed + 3), {out, in});
    bits = pack_signs<uint32_t>(w.cview());
  }
  TensorView<const float, 1, Host> a() const { return TensorView<const float, 1, Host>(alpha.data(), {in}); }
  TensorView<const float, 1, Host> b() const { return TensorView<const float, 1, Host>(beta.data(), {in}); }
  TensorView<const float, 2, Host> xv() const { return TensorView<const float, 2, Host>(x.data(), {T, in}); }

  std::vector<float> prefill(Context<Host>& ctx, const TiledSigns& s) const {
    Tensor<float, 2, Host> y({T, out});
    detail::binary_linear_prefill_impl(ctx, xv(), s, a(), b(), y.view());
    return to_vector(y);
  }
  std::vector<float> rows(Context<Host>& ctx, const TiledSigns& s) const {
    Tensor<float, 2, Host> y({T, out});
    detail::binary_linear_impl(ctx, xv(), s, a(), b(), y.view());
    return to_vector(y);
  }
  // The bound of tests/kernels/binary_linear_tiled.cpp per token: quantization sum_j d_w(j) / 2 (d_w = block
  // max |alpha x| / 1023) plus fp32 rounding, (in + 2) u times the mass of the terms.
  double bound(int64_t t) const {
    double quant = 0, mass = 0;
    for (int64_t w0 = 0; w0 < in; w0 += 32) {
      double m = 0;
      for (int64_t j = w0; j < std::min(in, w0 + 32); ++j) m = std::max(m, std::abs(double(alpha[j]) * x[t * in + j]));
      quant += double(std::min<int64_t>(32, in - w0)) * (m / 1023) / 2;
    }
    for (int64_t j = 0; j < in; ++j) mass += std::abs(double(x[t * in + j])) * (std::abs(alpha[j]) + std::abs(beta[j]));
    return quant + double(in + 2) * std::ldexp(1.0, -24) * (mass + quant);
  }
  std::vector<double> reference() const {
    return reference::binary_linear(std::vector<double>(x.begin(), x.end()), T, in,
                                    reference::unpack_sign_words(bits.data(), out, in), out,
                                    std::vector<double>(alpha.begin(), alpha.end()),
                                    std::vector<double>(beta.begin(), beta.end()));
  }
};

TEST(BinaryLinearPrefill, BitIdenticalToRowKernelAndWithinBoundOnOddShapes) {
  for (int threads : {1, 2}) {
    Context<Host> ctx(threads);
    for (int64_t T : {2, 3, 17, 64, 129})
      for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {259, 65}, {1027, 97}, {301, 333}}) {
        const Problem p(T, in, out, uint64_t(T * 100000 + in * 100 + out));
        const TiledSigns tiled(p.bits.cview());
        const auto y = p.prefill(ctx, tiled);
        // Same tables, same per-tile kernel, same fp32 operations in the same order: exact equality.
        ASSERT_EQ(y, p.rows(ctx, tiled)) << "threads=" << threads << " T=" << T << " in=" << in << " out=" << out;
        const auto ref = p.reference();
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < out; ++i)
            ASSERT_NEAR(y[size_t(t * out + i)], ref[size_t(t * out + i)], p.bound(t))
                << "threads=" << threads << " T=" << T << " in=" << in << " out=" << out << " at (" << t << ", " << i << ")";
      }
  }
}

TEST(BinaryLinearPrefill, PaddingBitsDoNotLeak) {
  Context<Host> ctx(2);
  const Problem p(40, 45, 70, 11);
  BitTensor<uint32_t, Host> dirty(p.out, p.in);
  for (int64_t i = 0; i < p.out; ++i) {
    dirty.view().row(i)[0] = p.bits.cview().row(i)[0];
    dirty.view().row(i)[1] = p.bits.cview().row(i)[1] | ~((1u << 13) - 1u);  // the 19 padding bits set to 1
  }
  EXPECT_EQ(p.prefill(ctx, TiledSigns(p.bits.cview())), p.prefill(ctx, TiledSigns(dirty.cview())));
}

TEST(BinaryLinearPrefill, StridedRowsAndDispatch) {
  Context<Host> ctx(2);
  const Problem p(33, 100, 45, 21);
  const TiledSigns tiled(p.bits.cview());
  const auto dense = p.prefill(ctx, tiled);
  // x rows 7 floats apart beyond `in`, y rows 5 beyond `out`; the gaps of y keep their sentinel.
  const int64_t xs = p.in + 7, ys = p.out + 5;
  std::vector<float> xbuf(size_t(p.T * xs), 1e30f), ybuf(size_t(p.T * ys), -7.0f);
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t j = 0; j < p.in; ++j) xbuf[size_t(t * xs + j)] = p.x[size_t(t * p.in + j)];
  binary_linear(ctx, TensorView<const float, 2, Host>(xbuf.data(), {p.T, p.in}, {xs, 1}), tiled, p.a(), p.b(),
                TensorView<float, 2, Host>(ybuf.data(), {p.T, p.out}, {ys, 1}));  // T = 33 >= kMinTokens: prefill
  static_assert(detail::prefill::kMinTokens <= 33, "the test must reach the prefill path");
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < p.out; ++i) ASSERT_EQ(ybuf[size_t(t * ys + i)], dense[size_t(t * p.out + i)]) << t << " " << i;
    for (int64_t i = p.out; i < ys; ++i) ASSERT_EQ(ybuf[size_t(t * ys + i)], -7.0f) << "gap of row " << t;
  }
}

}  // namespace
}  // namespace bimamba
