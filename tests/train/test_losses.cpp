// Training losses (train/losses.hpp): against the double reference (train/reference/losses.hpp), dlogits
// against central finite differences of the reference in double, the gradient modes, top-k teachers,
// thread-count independence and bad ids.
#include <gtest/gtest.h>

#include <bimamba/tensor/copy.hpp>
#include <bimamba/train/losses.hpp>
#include <bimamba/train/reference/losses.hpp>

#include "test_support.hpp"

namespace bimamba {
namespace {

constexpr int64_t kB = 3, kL = 5, kV = 37;  // odd shapes on purpose

Tensor<float, 3, Host> random_logits(uint64_t seed, float range = 4.0f) {
  return tensor_from<float, 3>(test::random_floats(size_t(kB * kL * kV), seed, -range, range), {kB, kL, kV});
}

Tensor<int32_t, 2, Host> random_targets(uint64_t seed, int64_t V = kV) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(size_t(kB * kL));
  for (auto& id : ids) id = int32_t(rng() % uint64_t(V));
  return tensor_from<int32_t, 2>(ids, {kB, kL});
}

std::vector<double> as_double(const Tensor<float, 3, Host>& t) {
  return std::vector<double>(t.data(), t.data() + t.numel());
}

std::vector<int64_t> as_int64(const Tensor<int32_t, 2, Host>& t) {
  return std::vector<int64_t>(t.data(), t.data() + t.numel());
}

// Central differences of f at x (all coordinates), step h.
template <class F>
std::vector<double> finite_differences(F&& f, std::vector<double> x, double h) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// Float32 logits, float exponentials and float gradient writes against exact double math: each dlogit has a
// relative error of a few float ulps (1e-7), the loss (summed in double) about the same.
constexpr double kGradTol = 1e-5;
constexpr double kLossTol = 1e-6;
// Central differences in double with h = 1e-5: rounding eps * |L| / h ~ 1e-16 * 4 / 1e-5 = 4e-11 per entry,
// against entries of size ~1 / (B L V) ~ 2e-3, so ~2e-8 relative; truncation h^2 |L'''| / 6 is smaller.
constexpr double kFdTol = 1e-7;
constexpr double kFdStep = 1e-5;

TEST(Losses, CrossEntropyMatchesReferenceAndFiniteDifferences) {
  Context<Host> ctx;
  auto logits = random_logits(1);
  auto targets = random_targets(2);
  targets(1, 2) = -100;  // one ignored position
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  const double loss = cross_entropy_loss(ctx, logits, targets, dlogits);

  const auto x = as_double(logits);
  const auto y = as_int64(targets);
  std::vector<double> grad;
  const double expected = reference::cross_entropy(x, y, kV, -100, &grad);
  EXPECT_NEAR(loss, expected, kLossTol * expected);
  EXPECT_LT(test::relative_l2(dlogits.data(), grad), kGradTol);
  for (int64_t v = 0; v < kV; ++v) EXPECT_EQ(dlogits(1, 2, v), 0.0f) << "ignored row has a gradient at " << v;

  const auto fd = finite_differences(
      [&](const std::vector<double>& p) { return reference::cross_entropy(p, y, kV, -100, nullptr); }, x, kFdStep);
  EXPECT_LT(test::relative_l2(grad, fd), kFdTol);
  EXPECT_LT(test::relative_l2(dlogits.data(), fd), kGradTol);
}

TEST(Losses, DistillMatchesReferenceAndFiniteDifferences) {
  Context<Host> ctx;
  auto logits = random_logits(3);
  auto teacher = random_logits(4, 6.0f);
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  const double loss = distill_loss(ctx, logits, teacher, dlogits);

  const auto x = as_double(logits);
  const auto t = as_double(teacher);
  std::vector<double> grad;
  const double expected = reference::distill(x, t, kV, &grad);
  EXPECT_NEAR(loss, expected, kLossTol * expected);
  EXPECT_LT(test::relative_l2(dlogits.data(), grad), kGradTol);

  const auto fd = finite_differences(
      [&](const std::vector<double>& p) { return reference::distill(p, t, kV, nullptr); }, x, kFdStep);
  EXPECT_LT(test::relative_l2(grad, fd), kFdTol);
  EXPECT_LT(test::relative_l2(dlogits.data(), fd), kGradTol);
}

TEST(Losses, TopKTeacherEqualsDenseTeacherZeroOutsideTopK) {
  Context<Host> ctx;
  constexpr int64_t kK = 4;
  auto logits = random_logits(5);
  auto top = tensor_from<float, 3>(test::random_floats(size_t(kB * kL * kK), 6, -3, 3), {kB, kL, kK});
  Tensor<int32_t, 3, Host> ids({kB, kL, kK});
  std::vector<double> dense(size_t(kB * kL * kV), -1e300);  // exp(-1e300 - max) == 0 in double
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t t = 0; t < kL; ++t)
      for (int64_t k = 0; k < kK; ++k) {
        ids(b, t, k) = int32_t((7 * k + 3 * t + b) % kV);  // distinct within a row since 7k < kV
        dense[size_t((b * kL + t) * kV + ids(b, t, k))] = top(b, t, k);
      }
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  const double loss = distill_loss(ctx, logits, TopKTeacher<Host>{ids, top}, dlogits);
  std::vector<double> grad;
  const double expected = reference::distill(as_double(logits), dense, kV, &grad);
  EXPECT_NEAR(loss, expected, kLossTol * expected);
  EXPECT_LT(test::relative_l2(dlogits.data(), grad), kGradTol);
}

TEST(Losses, AccumulateAddsScaledGradient) {
  Context<Host> ctx;
  auto logits = random_logits(7);
  auto teacher = random_logits(8);
  Tensor<float, 3, Host> once({kB, kL, kV}), twice({kB, kL, kV});
  distill_loss(ctx, logits, teacher, once, {.scale = 2.0f});
  distill_loss(ctx, logits, teacher, twice, {.scale = 1.0f});
  distill_loss(ctx, logits, teacher, twice, {.scale = 1.0f, .mode = GradientMode::Accumulate});
  // 2 * g computed once vs g + g: the same float operations up to the final rounding of the sum.
  EXPECT_LT(test::relative_l2(twice.data(), std::vector<float>(once.data(), once.data() + once.numel())), 1e-6);
}

TEST(Losses, NextTokenShiftsTargetsAndZeroesLastPosition) {
  Context<Host> ctx;
  auto logits = random_logits(9);
  auto tokens = random_targets(10);
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  for (int64_t i = 0; i < dlogits.numel(); ++i) dlogits.data()[i] = 5.0f;  // stale values must go
  const double loss = next_token_loss(ctx, logits, tokens, dlogits);

  std::vector<double> x;
  std::vector<int64_t> y;
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t t = 0; t + 1 < kL; ++t) {
      for (int64_t v = 0; v < kV; ++v) x.push_back(logits(b, t, v));
      y.push_back(tokens(b, t + 1));
    }
  std::vector<double> grad;
  const double expected = reference::cross_entropy(x, y, kV, -100, &grad);
  EXPECT_NEAR(loss, expected, kLossTol * expected);
  std::vector<float> got;
  for (int64_t b = 0; b < kB; ++b) {
    for (int64_t t = 0; t + 1 < kL; ++t)
      for (int64_t v = 0; v < kV; ++v) got.push_back(dlogits(b, t, v));
    for (int64_t v = 0; v < kV; ++v) EXPECT_EQ(dlogits(b, kL - 1, v), 0.0f);
  }
  EXPECT_LT(test::relative_l2(got, grad), kGradTol);
}

TEST(Losses, MixedIsWeightedSum) {
  Context<Host> ctx;
  auto logits = random_logits(11);
  auto teacher = random_logits(12);
  auto targets = random_targets(13);
  Tensor<float, 3, Host> dmix({kB, kL, kV}), dce({kB, kL, kV}), dkd({kB, kL, kV});
  const MixedLoss mix = mixed_loss(ctx, logits, targets, teacher.cview(), dmix, {.ce = 0.3, .distill = 0.7});
  const double ce = cross_entropy_loss(ctx, logits, targets, dce);
  const double kd = distill_loss(ctx, logits, teacher, dkd);
  EXPECT_EQ(mix.ce, ce);
  EXPECT_EQ(mix.distill, kd);
  EXPECT_DOUBLE_EQ(mix.total, 0.3 * ce + 0.7 * kd);
  std::vector<double> expected(size_t(dmix.numel()));
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = 0.3 * dce.data()[i] + 0.7 * dkd.data()[i];
  // Scaling inside vs outside the float computation: a few ulps.
  EXPECT_LT(test::relative_l2(dmix.data(), expected), 1e-6);
}

TEST(Losses, IndependentOfThreadCount) {
  auto logits = random_logits(14);
  auto teacher = random_logits(15);
  Context<Host> one(1), many(4);
  Tensor<float, 3, Host> d1({kB, kL, kV}), d4({kB, kL, kV});
  const double l1 = distill_loss(one, logits, teacher, d1);
  const double l4 = distill_loss(many, logits, teacher, d4);
  EXPECT_EQ(l1, l4);
  EXPECT_EQ(0, std::memcmp(d1.data(), d4.data(), d1.bytes()));
}

TEST(Losses, StableForHugeLogits) {
  Context<Host> ctx;
  auto logits = random_logits(16, 3e4f);  // exp would overflow without the max shift
  auto targets = random_targets(17);
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  const double loss = cross_entropy_loss(ctx, logits, targets, dlogits);
  ASSERT_TRUE(std::isfinite(loss));
  std::vector<double> grad;
  const double expected = reference::cross_entropy(as_double(logits), as_int64(targets), kV, -100, &grad);
  EXPECT_NEAR(loss, expected, kLossTol * expected);
  EXPECT_LT(test::relative_l2(dlogits.data(), grad), kGradTol);
}

TEST(Losses, InPlaceGradientEqualsSeparateBuffer) {
  Context<Host> ctx;
  auto targets = random_targets(22);
  auto teacher = random_logits(23);
  auto logits = random_logits(24);
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  const double ce = cross_entropy_loss(ctx, logits, targets, dlogits);
  auto in_place = random_logits(24);
  EXPECT_EQ(cross_entropy_loss(ctx, in_place, targets, in_place), ce);
  EXPECT_EQ(0, std::memcmp(in_place.data(), dlogits.data(), dlogits.bytes()));

  const double kd = distill_loss(ctx, logits, teacher, dlogits);
  in_place = random_logits(24);
  EXPECT_EQ(distill_loss(ctx, in_place, teacher, in_place), kd);
  EXPECT_EQ(0, std::memcmp(in_place.data(), dlogits.data(), dlogits.bytes()));
}

TEST(Losses, LossOnlyWithoutGradient) {
  Context<Host> ctx;
  auto logits = random_logits(18);
  auto targets = random_targets(19);
  Tensor<float, 3, Host> dlogits({kB, kL, kV});
  EXPECT_EQ(cross_entropy_loss(ctx, logits, targets, {}), cross_entropy_loss(ctx, logits, targets, dlogits));
}

TEST(Losses, OutOfRangeIdsThrowNamingTheValue) {
  Context<Host> ctx;
  auto logits = random_logits(20);
  auto targets = random_targets(21);
  targets(2, 3) = int32_t(kV);
  try {
    cross_entropy_loss(ctx, logits, targets, {});
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3) = 37"), std::string::npos) << e.what();
  }
  Tensor<int32_t, 3, Host> ids({kB, kL, 1});
  Tensor<float, 3, Host> top({kB, kL, 1});
  ids(0, 1, 0) = -1;
  EXPECT_THROW(distill_loss(ctx, logits, TopKTeacher<Host>{ids, top}, {}), InvalidArgument);
  Tensor<float, 3, Host> wrong({kB, kL, kV + 1});
  EXPECT_THROW(distill_loss(ctx, logits, wrong, {}), InvalidArgument);
}

}  // namespace
}  // namespace bimamba
