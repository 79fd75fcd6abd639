// Gradient utilities (train/grad_utils.hpp): global norm, clipping, non-finite search, micro-batches.
#include <gtest/gtest.h>

#include <bimamba/train/grad_utils.hpp>
#include <bimamba/train/losses.hpp>

#include "test_support.hpp"

namespace bimamba {
namespace {

ParamStore<Host> make_store(uint64_t seed) {
  ParamStore<Host> store;
  store.declare("a", {3, 5});
  store.declare("b", {40000});  // spans several reduction blocks
  store.declare("c", {1}, ParamGroup::NoDecay);
  store.allocate();
  const auto g = test::random_floats(size_t(store.flat_size()), seed);
  for (const auto& e : store.entries())
    for (int64_t i = 0; i < e.numel; ++i) store.grads().data()[e.offset + i] = g[size_t(e.offset + i)];
  return store;
}

double norm_in_double(const ParamStore<Host>& store) {
  double s = 0;
  for (int64_t i = 0; i < store.flat_size(); ++i) s += double(store.grads().data()[i]) * store.grads().data()[i];
  return std::sqrt(s);
}

TEST(GradUtils, NormIsGlobalL2AndThreadIndependent) {
  auto store = make_store(1);
  Context<Host> one(1), many(3);
  const double n1 = grad_norm(one, store);
  EXPECT_EQ(n1, grad_norm(many, store));
  // Block sums vs one running sum, both double over 40k float squares: ~1e-15 relative.
  EXPECT_NEAR(n1, norm_in_double(store), 1e-12 * n1);
}

TEST(GradUtils, ClipScalesToMaxNorm) {
  Context<Host> ctx;
  auto store = make_store(2);
  const double before = norm_in_double(store);
  ASSERT_GT(before, 10.0);
  const double returned = clip_grad_norm(ctx, store, 1.0);
  EXPECT_NEAR(returned, before, 1e-12 * before);
  // Scaled by 1 / (n + 1e-6) in float: the new norm is 1 - 1e-6 / n up to float rounding (~1e-7).
  EXPECT_NEAR(norm_in_double(store), 1.0, 1e-6);
}

TEST(GradUtils, ClipLeavesSmallGradientsAlone) {
  Context<Host> ctx;
  auto store = make_store(3);
  std::vector<float> before(store.grads().data(), store.grads().data() + store.flat_size());
  clip_grad_norm(ctx, store, 1e6);
  EXPECT_EQ(0, std::memcmp(before.data(), store.grads().data(), before.size() * sizeof(float)));
  EXPECT_THROW(clip_grad_norm(ctx, store, 0.0), InvalidArgument);
}

TEST(GradUtils, ClipWithNanLeavesGradientsForThePolicy) {
  Context<Host> ctx;
  auto store = make_store(4);
  store.grad<1>(store.id("b"))(123) = std::nanf("");
  EXPECT_TRUE(std::isnan(clip_grad_norm(ctx, store, 1.0)));
  EXPECT_GT(std::abs(store.grad<1>(store.id("b"))(0)), 0.0f);  // not scaled to garbage
}

TEST(GradUtils, FindNonFiniteNamesFirstParameter) {
  Context<Host> ctx(2);
  auto store = make_store(5);
  EXPECT_FALSE(find_non_finite(ctx, store, store.grads()).has_value());
  store.grad<1>(store.id("b"))(39999) = INFINITY;
  store.grad<1>(store.id("c"))(0) = std::nanf("");
  auto bad = find_non_finite(ctx, store, store.grads());
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->name, "b");
  EXPECT_EQ(bad->param, store.id("b"));
  EXPECT_EQ(bad->index, 39999);
  EXPECT_EQ(bad->value, INFINITY);
  try {
    check_finite_grads(ctx, store, "step 7");
    FAIL() << "no exception";
  } catch (const NumericError& e) {
    EXPECT_EQ(std::string(e.what()), "step 7: the gradient of 'b' holds inf at element 39999");
  }
}

TEST(GradUtils, MicroBatchesAverageAndAccumulate) {
  const MicroBatch first = micro_batch(0, 4), last = micro_batch(3, 4);
  EXPECT_EQ(first.loss_scale, 0.25f);
  EXPECT_EQ(first.backward_mode, GradientMode::Overwrite);
  EXPECT_FALSE(first.last);
  EXPECT_EQ(last.backward_mode, GradientMode::Accumulate);
  EXPECT_TRUE(last.last);
  EXPECT_TRUE(micro_batch(0, 1).last);
  EXPECT_THROW(micro_batch(4, 4), InvalidArgument);
}

// A bigram model's backward, dW[input(b, t), :] (+)= dlogits[b, t, :], with the micro-batch's GradientMode.
void bigram_backward(TensorView<const int32_t, 2, Host> inputs, const Tensor<float, 3, Host>& dlogits,
                     TensorView<float, 2, Host> dW, GradientMode mode) {
  if (mode == GradientMode::Overwrite)
    for (int64_t i = 0; i < dW.numel(); ++i) dW.data()[i] = 0;
  for (int64_t b = 0; b < inputs.size(0); ++b)
    for (int64_t t = 0; t < inputs.size(1); ++t)
      for (int64_t v = 0; v < dW.size(1); ++v) dW(inputs(b, t), v) += dlogits(b, t, v);
}

TEST(GradUtils, MicroBatchesGiveTheFullBatchGradient) {
  Context<Host> ctx;
  constexpr int64_t kB = 4, kL = 6, kV = 11, kMicro = 2;
  std::mt19937_64 rng(9);
  Tensor<int32_t, 2, Host> tokens({kB, kL + 1});
  for (int64_t i = 0; i < tokens.numel(); ++i) tokens.data()[i] = int32_t(rng() % kV);
  const auto W = test::random_floats(size_t(kV * kV), 10);
  auto forward = [&](TensorView<const int32_t, 2, Host> inputs) {  // logits[b, t, :] = W[input, :]
    Tensor<float, 3, Host> logits({inputs.size(0), kL, kV});
    for (int64_t b = 0; b < inputs.size(0); ++b)
      for (int64_t t = 0; t < kL; ++t)
        for (int64_t v = 0; v < kV; ++v) logits(b, t, v) = W[size_t(inputs(b, t) * kV + v)];
    return logits;
  };
  auto inputs = tokens.cview().narrow(1, 0, kL);
  auto targets = tokens.cview().narrow(1, 1, kL);

  Tensor<float, 2, Host> full({kV, kV}), accumulated({kV, kV});
  {
    auto logits = forward(inputs);
    Tensor<float, 3, Host> dlogits(logits.shape());
    cross_entropy_loss(ctx, logits, targets, dlogits);
    bigram_backward(inputs, dlogits, full, GradientMode::Overwrite);
  }
  for (int64_t i = 0; i < accumulated.numel(); ++i) accumulated.data()[i] = 7.0f;  // the last step's, stale
  for (int i = 0; i < kMicro; ++i) {
    const MicroBatch micro = micro_batch(i, kMicro);
    auto in = inputs.narrow(0, i * kB / kMicro, kB / kMicro);
    auto logits = forward(in);
    Tensor<float, 3, Host> dlogits(logits.shape());
    cross_entropy_loss(ctx, logits, targets.narrow(0, i * kB / kMicro, kB / kMicro), dlogits,
                       {.scale = micro.loss_scale});
    bigram_backward(in, dlogits, accumulated, micro.backward_mode);
    EXPECT_EQ(micro.last, i == kMicro - 1);
  }
  // Equal-sized micro-batches: mean of means == mean. Float gradients summed in another grouping: ~1e-7.
  EXPECT_LT(test::relative_l2(accumulated.data(), std::vector<float>(full.data(), full.data() + full.numel())), 1e-6);
}

}  // namespace
}  // namespace bimamba
