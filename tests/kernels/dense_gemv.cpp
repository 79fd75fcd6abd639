// dense_gemv (the LM head GEMV / small GEMM, fp32 and bf16 weight storage) against the double reference on
// odd shapes, strided rows, and shape errors.
#include "test_support.hpp"

#include <bimamba/ops/dense_gemv.hpp>
#include <bimamba/ops/reference/dense_gemv.hpp>

namespace bimamba {
namespace {

// Worst-case fp32 error of a length-D dot product evaluated by any summation order with FMA:
// (D + 1) u sum_d |x_d w_d|, u = 2^-24 (the weights as stored are exact in float).
template <class W>
void check(int64_t T, int64_t D, int64_t V, uint64_t seed) {
  Context<Host> ctx;
  const auto xv = test::random_floats(size_t(T * D), seed, -2, 2);
  const auto wf = test::random_floats(size_t(V * D), seed + 1, -0.1f, 0.1f);
  Tensor<W, 2, Host> w({V, D});
  std::vector<double> wd(size_t(V * D));
  for (int64_t k = 0; k < V * D; ++k) {
    w.data()[k] = from_float<W>(wf[size_t(k)]);
    wd[size_t(k)] = to_float(w.data()[k]);
  }
  auto x = tensor_from<float, 2>(xv, {T, D});
  Tensor<float, 2, Host> y({T, V});
  dense_gemv(ctx, x, w, y);
  const auto ref = reference::dense_gemv(std::vector<double>(xv.begin(), xv.end()), T, D, wd, V);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; ++v) {
      double mass = 0;
      for (int64_t d = 0; d < D; ++d) mass += std::abs(xv[size_t(t * D + d)] * wd[size_t(v * D + d)]);
      ASSERT_NEAR(y(t, v), ref[size_t(t * V + v)], double(D + 1) * std::ldexp(1.0, -24) * mass)
          << "T=" << T << " D=" << D << " V=" << V << " at (" << t << ", " << v << ")";
    }
}

TEST(DenseGemv, Fp32MatchesReferenceOnOddShapes) {
  for (int64_t T : {1, 3, 17})
    for (auto [D, V] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {100, 31}, {259, 66}}) check<float>(T, D, V, 1);
}

TEST(DenseGemv, Bf16MatchesReferenceOnOddShapes) {
  for (int64_t T : {1, 3, 17})
    for (auto [D, V] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {33, 3}, {100, 31}, {259, 66}})
      check<bfloat16>(T, D, V, 2);
}

TEST(DenseGemv, StridedRowsAndShapeErrors) {
  Context<Host> ctx;
  const int64_t T = 3, D = 20, V = 9;
  auto big_x = tensor_from<float, 2>(test::random_floats(size_t(T * 32), 4), {T, 32});
  auto big_w = tensor_from<float, 2>(test::random_floats(size_t(V * 24), 5), {V, 24});
  Tensor<float, 2, Host> big_y({T, 16});
  dense_gemv(ctx, big_x.cview().narrow(1, 0, D), big_w.cview().narrow(1, 0, D), big_y.view().narrow(1, 0, V));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; ++v) {
      double ref = 0, mass = 0;
      for (int64_t d = 0; d < D; ++d) {
        ref += double(big_x(t, d)) * big_w(v, d);
        mass += std::abs(double(big_x(t, d)) * big_w(v, d));
      }
      ASSERT_NEAR(big_y(t, v), ref, double(D + 1) * std::ldexp(1.0, -24) * mass);  // fp32 dot bound as above
    }
  Tensor<float, 2, Host> y_bad({T, V + 1});
  try {
    dense_gemv(ctx, big_x.cview().narrow(1, 0, D), big_w.cview().narrow(1, 0, D), y_bad);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("dense_gemv: y"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bimamba
