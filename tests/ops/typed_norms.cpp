// rms_norm, add_rms_norm, gated_rms_norm, add and embedding against the double references, on odd shapes.
#include <bimamba/ops/add.hpp>
#include <bimamba/ops/embedding.hpp>
#include <bimamba/ops/gated_rms_norm.hpp>
#include <bimamba/ops/reference/embedding.hpp>
#include <bimamba/ops/reference/rms_norm.hpp>
#include <bimamba/ops/rms_norm.hpp>

#include "ops_test_util.hpp"

namespace bimamba::test {
namespace {

template <class Backend>
class Norms : public BackendTest<Backend> {};
TYPED_TEST_SUITE(Norms, Backends);

// Float32 sums over at most a few dozen terms against double: errors of a few ulp (~1e-7 relative).
constexpr double kTol = 1e-6;

TYPED_TEST(Norms, RmsNormMatchesReference) {
  const int64_t T = 7, D = 13;
  const auto x = random_floats(size_t(T * D), 1, -3, 3), w = random_floats(size_t(D), 2, 0.5f, 1.5f);
  auto xd = on<TypeParam, 2>(x, {T, D});
  auto wd = on<TypeParam, 1>(w, {D});
  Tensor<float, 2, TypeParam> y({T, D});
  rms_norm(this->ctx(), xd, wd, 1e-5f, y);
  EXPECT_LT(relative_l2(to_vector(y), reference::rms_norm(to_double(x), to_double(w), T, D, 1e-5)), kTol);
}

TYPED_TEST(Norms, AddRmsNormAddsThenNormalizes) {
  const int64_t T = 5, D = 11;
  const auto r = random_floats(size_t(T * D), 3), x = random_floats(size_t(T * D), 4), w = random_floats(size_t(D), 5);
  auto rd = on<TypeParam, 2>(r, {T, D});
  auto xd = on<TypeParam, 2>(x, {T, D});
  auto wd = on<TypeParam, 1>(w, {D});
  Tensor<float, 2, TypeParam> y({T, D});
  add_rms_norm(this->ctx(), rd, xd, wd, 1e-5f, y);
  std::vector<double> sum(r.size());
  for (size_t i = 0; i < r.size(); ++i) sum[i] = double(r[i]) + double(x[i]);
  EXPECT_LT(relative_l2(to_vector(rd), sum), kTol);
  EXPECT_LT(relative_l2(to_vector(y), reference::rms_norm(sum, to_double(w), T, D, 1e-5)), kTol);
}

TYPED_TEST(Norms, AddAccumulates) {
  const int64_t T = 3, D = 7;
  const auto x = random_floats(size_t(T * D), 6), y0 = random_floats(size_t(T * D), 7);
  auto xd = on<TypeParam, 2>(x, {T, D});
  auto yd = on<TypeParam, 2>(y0, {T, D});
  add(this->ctx(), xd, yd);
  const auto y = to_vector(yd);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], x[i] + y0[i]);  // one float add: exact
}

TYPED_TEST(Norms, GatedRmsNormMatchesReferenceWithGroups) {
  const int64_t T = 6, E = 15, G = 3;
  const auto y = random_floats(size_t(T * E), 8, -2, 2), z = random_floats(size_t(T * E), 9, -3, 3),
             w = random_floats(size_t(E), 10, 0.5f, 1.5f);
  auto yd = on<TypeParam, 2>(y, {T, E});
  auto zd = on<TypeParam, 2>(z, {T, E});
  auto wd = on<TypeParam, 1>(w, {E});
  Tensor<float, 2, TypeParam> out({T, E});
  gated_rms_norm(this->ctx(), yd, zd, wd, G, 1e-5f, out);
  const auto ref = reference::gated_rms_norm(to_double(y), to_double(z), to_double(w), T, E, G, 1e-5);
  EXPECT_LT(relative_l2(to_vector(out), ref), kTol);
  // Groups are normalized separately: with one group the result differs.
  gated_rms_norm(this->ctx(), yd, zd, wd, 1, 1e-5f, out);
  EXPECT_GT(relative_l2(to_vector(out), ref), 1e-3);
  EXPECT_THROW(gated_rms_norm(this->ctx(), yd, zd, wd, 4, 1e-5f, out), InvalidArgument);
}

TYPED_TEST(Norms, EmbeddingGathersRowsAndRejectsBadIds) {
  const int64_t V = 9, D = 5;
  const auto w = random_floats(size_t(V * D), 11);
  const std::vector<int32_t> ids = {3, 0, 8, 8, 1, 4};
  auto wd = on<TypeParam, 2>(w, {V, D});
  auto idd = to<TypeParam>(tensor_from<int32_t, 2>(ids, {2, 3}));
  Tensor<float, 3, TypeParam> out({2, 3, D});
  embedding(this->ctx(), idd, wd, out);
  EXPECT_EQ(relative_l2(to_vector(out), reference::embedding(ids, to_double(w), V, D)), 0.0);  // a copy: exact
  for (int32_t bad : {9, -1}) {
    auto bad_ids = to<TypeParam>(tensor_from<int32_t, 2>(std::vector<int32_t>{1, bad}, {1, 2}));
    Tensor<float, 3, TypeParam> o({1, 2, D});
    try {
      embedding(this->ctx(), bad_ids, wd, o);
      ADD_FAILURE() << "id " << bad << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("token id " + std::to_string(bad)), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace bimamba::test
