// fbi_weight (against its double reference, including exact zeros and -0.0), neg_exp and apply_mask.
#include <bimamba/ops/apply_mask.hpp>
#include <bimamba/ops/fbi_weight.hpp>
#include <bimamba/ops/neg_exp.hpp>
#include <bimamba/ops/reference/fbi_weight.hpp>

#include "ops_test_util.hpp"

namespace bimamba::test {
namespace {

template <class Backend>
class SmallOps : public BackendTest<Backend> {};
TYPED_TEST_SUITE(SmallOps, Backends);

TYPED_TEST(SmallOps, FbiWeightMatchesReferenceAndSignOfZeroIsPlus) {
  const int64_t out = 7, in = 13;
  auto W = random_floats(size_t(out * in), 1);
  W[0] = 0.0f, W[1] = -0.0f;  // s(0) = s(-0) = +1
  const auto alpha = random_floats(size_t(in), 2, 0.1f, 1.0f), beta = random_floats(size_t(in), 3, -0.2f, 0.2f);
  Tensor<float, 2, TypeParam> w_eff({out, in});
  fbi_weight(this->ctx(), on<TypeParam, 2>(W, {out, in}), on<TypeParam, 1>(alpha, {in}), on<TypeParam, 1>(beta, {in}), w_eff);
  const auto got = to_vector(w_eff);
  // A sign select and one float add per element: within one rounding of the double result.
  EXPECT_LT(relative_l2(got, reference::fbi_weight(to_double(W), to_double(alpha), to_double(beta), out, in)), 1e-7);
  EXPECT_EQ(got[0], alpha[0] + beta[0]);
  EXPECT_EQ(got[1], alpha[1] + beta[1]);
}

TYPED_TEST(SmallOps, NegExpAndMask) {
  const auto x = random_floats(9, 4, -3, 3);
  Tensor<float, 1, TypeParam> y({9});
  neg_exp(this->ctx(), on<TypeParam, 1>(x, {9}), y);
  const auto got = to_vector(y);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], -std::exp(double(x[i])), 1e-6 * std::exp(double(x[i])));

  const int64_t B = 2, L = 3, C = 4;
  const auto v = random_floats(size_t(B * L * C), 5);
  const std::vector<float> mask = {1, 0, 1, 0, 0, 1};
  auto xd = on<TypeParam, 3>(v, {B, L, C});
  apply_mask(this->ctx(), on<TypeParam, 2>(mask, {B, L}), xd);
  const auto masked = to_vector(xd);
  for (int64_t i = 0; i < B * L * C; ++i) EXPECT_EQ(masked[size_t(i)], mask[size_t(i / C)] == 0.0f ? 0.0f : v[size_t(i)]);
}

}  // namespace
}  // namespace bimamba::test
