// AdamW (train/adamw.hpp) against a hand-written double-precision AdamW over several steps, parameter
// groups, and the non-finite gradient policies.
#include <gtest/gtest.h>

#include <bimamba/train/adamw.hpp>
#include <bimamba/train/schedule.hpp>

#include "test_support.hpp"

namespace bimamba {
namespace {

// A store with odd sizes (padding between tensors) and both groups.
ParamStore<Host> make_store() {
  ParamStore<Host> store;
  store.declare("layers.0.in_proj.weight", {5, 7});
  store.declare("layers.0.norm.weight", {7}, ParamGroup::NoDecay);
  store.declare("layers.0.mixer.D", {3}, ParamGroup::NoDecay);
  store.declare("lm_head.bias", {3});
  store.allocate();
  const auto init = test::random_floats(size_t(store.flat_size()), 1);
  for (const auto& e : store.entries())
    for (int64_t i = 0; i < e.numel; ++i) store.params().data()[e.offset + i] = init[size_t(e.offset + i)];
  return store;
}

void fill_grads(ParamStore<Host>& store, uint64_t seed) {
  const auto g = test::random_floats(size_t(store.flat_size()), seed, -2, 2);
  for (const auto& e : store.entries())
    for (int64_t i = 0; i < e.numel; ++i) store.grads().data()[e.offset + i] = g[size_t(e.offset + i)];
}

// The update of the top comment of train/adamw.hpp, in double, element by element.
struct ReferenceAdamW {
  std::vector<double> p, m, v;
  double beta1, beta2, eps, wd;
  int t = 0;
  void step(const std::vector<double>& g, const std::vector<bool>& decay, double lr) {
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      if (decay[i]) p[i] *= 1 - lr * wd;
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(beta1, t));
      const double vhat = v[i] / (1 - std::pow(beta2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

TEST(AdamW, MatchesDoubleReferenceOverSeveralSteps) {
  Context<Host> ctx;
  auto store = make_store();
  const AdamWConfig config{.lr = 1e-2f, .betas = {0.9f, 0.95f}, .eps = 1e-8f, .weight_decay = 0.1f};
  AdamW<Host> opt(store, config);
  const CosineSchedule schedule(3e-2f, 3e-3f, 2, 6);

  const int64_t n = store.flat_size();
  ReferenceAdamW ref{std::vector<double>(store.params().data(), store.params().data() + n),
                     std::vector<double>(size_t(n)),
                     std::vector<double>(size_t(n)),
                     0.9,
                     0.95,
                     1e-8,
                     0.1};
  std::vector<bool> decay(size_t(n), false);
  for (const auto& e : store.entries())
    for (int64_t i = 0; i < e.numel; ++i) decay[size_t(e.offset + i)] = e.group == ParamGroup::Decay;

  for (int step = 0; step < 7; ++step) {
    fill_grads(store, 100 + uint64_t(step));
    const float lr = schedule(step);
    ASSERT_TRUE(opt.step(ctx, lr));
    ref.step(std::vector<double>(store.grads().data(), store.grads().data() + n), decay, double(lr));
  }
  EXPECT_EQ(opt.step_count(), 7);
  // Float32 arithmetic, 7 steps of updates of size ~lr: each step adds a few float ulps of |p| ~ 1 and of
  // the update; 1e-6 relative per tensor is about 10 ulps, while one step with a wrong bias correction or
  // decay on the wrong group moves parameters by ~1e-3.
  for (const auto& e : store.entries()) {
    std::vector<double> want(ref.p.begin() + e.offset, ref.p.begin() + e.offset + e.numel);
    EXPECT_LT(test::relative_l2(store.params().data() + e.offset, want), 1e-6) << e.name;
    std::vector<double> want_m(ref.m.begin() + e.offset, ref.m.begin() + e.offset + e.numel);
    std::vector<double> want_v(ref.v.begin() + e.offset, ref.v.begin() + e.offset + e.numel);
    EXPECT_LT(test::relative_l2(opt.m().data() + e.offset, want_m), 1e-6) << e.name;
    EXPECT_LT(test::relative_l2(opt.v().data() + e.offset, want_v), 1e-6) << e.name;
  }
  for (int64_t i = 0; i < n; ++i)  // padding stays zero
    if (!std::isfinite(store.params().data()[i]) || (ref.p[size_t(i)] == 0 && store.params().data()[i] != 0))
      ADD_FAILURE() << "flat element " << i << " = " << store.params().data()[i];
}

TEST(AdamW, WeightDecayOnlyOnDecayGroup) {
  Context<Host> ctx;
  auto store = make_store();
  AdamW<Host> opt(store, {.lr = 0.5f, .weight_decay = 0.2f});
  std::vector<float> before(store.params().data(), store.params().data() + store.flat_size());
  // Zero gradients: m = v = 0, so the Adam term is 0 and only the decay acts.
  for (int step = 0; step < 3; ++step) ASSERT_TRUE(opt.step(ctx));
  for (const auto& e : store.entries())
    for (int64_t i = 0; i < e.numel; ++i) {
      const float b = before[size_t(e.offset + i)];
      const float got = store.params().data()[e.offset + i];
      if (e.group == ParamGroup::NoDecay) {
        EXPECT_EQ(got, b) << e.name;
      } else {
        // (1 - 0.5 * 0.2)^3; the same three float products, but FLOAT_EQ (4 ulps) leaves room for the
        // compiler contracting p * decay - update into one fused multiply-add.
        EXPECT_FLOAT_EQ(got, b * 0.9f * 0.9f * 0.9f) << e.name;
      }
    }
}

TEST(AdamW, NanGradientThrowsNamingTheParameter) {
  Context<Host> ctx;
  auto store = make_store();
  AdamW<Host> opt(store, {});
  fill_grads(store, 7);
  ASSERT_TRUE(opt.step(ctx));
  store.grad<1>(store.id("layers.0.mixer.D"))(2) = std::nanf("");
  try {
    opt.step(ctx);
    FAIL() << "no exception";
  } catch (const NumericError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("step 2"), std::string::npos) << what;
    EXPECT_NE(what.find("'layers.0.mixer.D'"), std::string::npos) << what;
    EXPECT_NE(what.find("element 2"), std::string::npos) << what;
  }
  EXPECT_EQ(opt.step_count(), 1);
}

TEST(AdamW, InfGradientSkipsStepUnderSkipPolicy) {
  Context<Host> ctx;
  std::vector<std::string> warnings;
  ctx.set_logger([&](LogLevel level, std::string_view message) {
    if (level == LogLevel::Warning) warnings.emplace_back(message);
  });
  auto store = make_store();
  AdamW<Host> opt(store, {.non_finite = NonFinitePolicy::SkipStep});
  fill_grads(store, 8);
  ASSERT_TRUE(opt.step(ctx));
  const std::vector<float> params(store.params().data(), store.params().data() + store.flat_size());
  const std::vector<float> m(opt.m().data(), opt.m().data() + store.flat_size());
  store.grad<2>(store.id("layers.0.in_proj.weight"))(4, 6) = -INFINITY;
  EXPECT_FALSE(opt.step(ctx));
  EXPECT_EQ(opt.step_count(), 1);
  EXPECT_EQ(opt.skipped_steps(), 1);
  EXPECT_EQ(0, std::memcmp(params.data(), store.params().data(), params.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(m.data(), opt.m().data(), m.size() * sizeof(float)));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'layers.0.in_proj.weight' holds -inf at element 34"), std::string::npos) << warnings[0];
}

TEST(AdamW, ClipAndStepEqualsClipGradNormThenStepBitForBit) {
  Context<Host> ctx;
  auto a = make_store(), b = make_store();
  AdamW<Host> oa(a, {.weight_decay = 0.1f}), ob(b, {.weight_decay = 0.1f});
  // max_norm 1.0 clips the first two steps' gradients (norm ~ 6 for 56 values in [-2, 2]); 1e6 does not clip.
  const double max_norms[] = {1.0, 1.0, 1e6};
  for (int step = 0; step < 3; ++step) {
    fill_grads(a, 20 + uint64_t(step));
    fill_grads(b, 20 + uint64_t(step));
    const std::vector<float> unscaled(b.grads().data(), b.grads().data() + b.flat_size());
    const double na = clip_grad_norm(ctx, a, max_norms[step]);
    ASSERT_TRUE(oa.step(ctx, 1e-2f));
    const ClippedStep sb = ob.clip_and_step(ctx, 1e-2f, max_norms[step]);
    ASSERT_TRUE(sb.stepped);
    EXPECT_EQ(sb.grad_norm, na);  // the same sum of squares
    if (step < 2) EXPECT_GT(na, max_norms[step]);  // the clipping path is taken
    // The update read g * factor without writing it: b's gradients are unscaled, a's scaled.
    EXPECT_EQ(0, std::memcmp(unscaled.data(), b.grads().data(), unscaled.size() * sizeof(float)));
    // Both updates use the same rounded float product g * factor (stored by clip_grad_norm in a, formed in
    // the update in b; the product feeds only multiplications, so no FMA contraction can absorb it): same bits.
    EXPECT_EQ(0, std::memcmp(a.params().data(), b.params().data(), size_t(a.flat_size()) * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(oa.m().data(), ob.m().data(), size_t(a.flat_size()) * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(oa.v().data(), ob.v().data(), size_t(a.flat_size()) * sizeof(float)));
  }
  EXPECT_EQ(ob.step_count(), 3);
  EXPECT_THROW(ob.clip_and_step(ctx, 1e-2f, 0.0), InvalidArgument);
}

TEST(AdamW, ClipAndStepAppliesTheNonFinitePolicy) {
  Context<Host> ctx;
  auto store = make_store();
  AdamW<Host> opt(store, {.non_finite = NonFinitePolicy::SkipStep});
  fill_grads(store, 9);
  const std::vector<float> params(store.params().data(), store.params().data() + store.flat_size());
  store.grad<1>(store.id("layers.0.norm.weight"))(3) = std::nanf("");
  const ClippedStep s = opt.clip_and_step(ctx, 1e-2f, 1.0);
  EXPECT_FALSE(s.stepped);
  EXPECT_TRUE(std::isnan(s.grad_norm));
  EXPECT_EQ(opt.step_count(), 0);
  EXPECT_EQ(opt.skipped_steps(), 1);
  EXPECT_EQ(0, std::memcmp(params.data(), store.params().data(), params.size() * sizeof(float)));
  AdamW<Host> strict(store, {});
  try {
    strict.clip_and_step(ctx, 1e-2f, 1.0);
    FAIL() << "no exception";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("'layers.0.norm.weight'"), std::string::npos) << e.what();
  }
}

TEST(AdamW, RejectsBadConfig) {
  auto store = make_store();
  EXPECT_THROW(AdamW<Host>(store, {.betas = {1.0f, 0.9f}}), InvalidArgument);
  EXPECT_THROW(AdamW<Host>(store, {.eps = 0.0f}), InvalidArgument);
  ParamStore<Host> unallocated;
  EXPECT_THROW(AdamW<Host>(unallocated, {}), InvalidArgument);
}

}  // namespace
}  // namespace bimamba
