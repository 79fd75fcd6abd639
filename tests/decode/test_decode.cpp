// The Host decode fast path (docs/decode.md): the fused Mamba-2 step op equals the unfused ops, and a
// packed Bi-Mamba model on the fast path (tiled projections, fused step, bf16 head) stays within the tiled
// kernel's error of the exact path, and generates the fixture's greedy tokens.
#include <test_support.hpp>

#include <bimamba/model/generate.hpp>
#include <bimamba/model/init.hpp>
#include <bimamba/model/load.hpp>
#include <bimamba/ops/causal_conv1d.hpp>
#include <bimamba/ops/dt_softplus.hpp>
#include <bimamba/ops/gated_rms_norm.hpp>
#include <bimamba/ops/mamba2_decode.hpp>
#include <bimamba/ops/neg_exp.hpp>
#include <bimamba/ops/ssd_step.hpp>
#include <random>
#include <string>
#include <vector>

#include "../model/model_test_util.hpp"

namespace bimamba::test {
namespace {

Tensor<float, 1, Host> random1(int64_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor<float, 1, Host> t({n});
  for (int64_t i = 0; i < n; ++i) t(i) = u(rng);
  return t;
}

// B = 2 sequences, H = 6 heads of P = 4 in G = 2 groups, N = 12 (one 8-lane block and a scalar tail), K = 4.
TEST(Mamba2DecodeStep, EqualsUnfusedOps) {
  constexpr int64_t B = 2, H = 6, P = 4, G = 2, N = 12, K = 4, E = H * P, C = E + 2 * G * N, R = E + C + H;
  std::mt19937 rng(7);
  Context<Host> ctx(2);
  auto zxbcdt = random1(B * R, rng, -2.0f, 2.0f);
  auto conv_w = random1(C * K, rng, -0.5f, 0.5f), conv_b = random1(C, rng, -0.5f, 0.5f);
  auto dt_bias = random1(H, rng, -3.0f, 0.0f), a_log = random1(H, rng, 0.0f, 2.0f), d = random1(H, rng, 0.5f, 1.5f);
  auto norm_w = random1(E, rng, 0.5f, 1.5f);
  auto conv0 = random1(B * C * K, rng, -1.0f, 1.0f), ssm0 = random1(B * H * P * N, rng, -1.0f, 1.0f);
  const float eps = 1e-5f, lo = 0.0f, hi = 0.5f;  // an upper dt limit that some heads hit
  const TensorView<const float, 2, Host> conv_wv(conv_w.data(), {C, K});
  const TensorView<const float, 2, Host> zv(zxbcdt.data(), {B, R});

  // Unfused: the ops the mixer's exact step calls.
  auto conv_a = random1(B * C * K, rng, 0, 0), ssm_a = random1(B * H * P * N, rng, 0, 0);
  copy(conv0.cview(), conv_a.view());
  copy(ssm0.cview(), ssm_a.view());
  Tensor<float, 2, Host> xbc({B, C}), dt({B, H}), y_ref({B, E});
  Tensor<float, 1, Host> A({H});
  causal_conv1d_step(ctx, TensorView<const float, 2, Host>(zxbcdt.data() + E, {B, C}, {R, 1}), conv_wv, conv_b.cview(),
                     TensorView<float, 3, Host>(conv_a.data(), {B, C, K}), xbc.view(), Activation::Silu);
  dt_softplus(ctx, TensorView<const float, 2, Host>(zxbcdt.data() + E + C, {B, H}, {R, 1}), dt_bias.cview(), lo, hi,
              dt.view());
  neg_exp(ctx, a_log.cview(), A.view());
  ssd_step(ctx, TensorView<const float, 3, Host>(xbc.data(), {B, H, P}, {C, P, 1}), dt.cview(), A.cview(),
           TensorView<const float, 3, Host>(xbc.data() + E, {B, G, N}, {C, N, 1}),
           TensorView<const float, 3, Host>(xbc.data() + E + G * N, {B, G, N}, {C, N, 1}), d.cview(),
           TensorView<float, 4, Host>(ssm_a.data(), {B, H, P, N}), TensorView<float, 3, Host>(y_ref.data(), {B, H, P}));
  gated_rms_norm(ctx, y_ref.cview(), TensorView<const float, 2, Host>(zxbcdt.data(), {B, E}, {R, 1}), norm_w.cview(), G,
                 eps, y_ref.view());

  // Fused.
  auto conv_b2 = random1(B * C * K, rng, 0, 0), ssm_b = random1(B * H * P * N, rng, 0, 0);
  copy(conv0.cview(), conv_b2.view());
  copy(ssm0.cview(), ssm_b.view());
  Tensor<float, 2, Host> y({B, E});
  const Mamba2DecodeWeights<Host> w{conv_wv, conv_b.cview(), dt_bias.cview(), a_log.cview(), d.cview(), norm_w.cview(),
                                    H, P, G, N, eps, lo, hi};
  mamba2_decode_step(ctx, w, zv, TensorView<float, 3, Host>(conv_b2.data(), {B, C, K}),
                     TensorView<float, 4, Host>(ssm_b.data(), {B, H, P, N}), y.view());

  // Same operations in a different summation order (N-term read-out, E/G-term norm): a few float ulps.
  EXPECT_EQ(to_vector(conv_b2), to_vector(conv_a));  // the conv state is only shifted: bit-identical
  EXPECT_LT(relative_l2(to_vector(ssm_b), to_vector(ssm_a)), 1e-6);
  EXPECT_LT(relative_l2(to_vector(y), to_vector(y_ref)), 1e-5);

  // Without the norm weight: the gated output, which the group-wise norm (in double here) turns into y.
  copy(conv0.cview(), conv_b2.view());
  copy(ssm0.cview(), ssm_b.view());
  Mamba2DecodeWeights<Host> w_gated = w;
  w_gated.norm_weight = {};
  Tensor<float, 2, Host> gated({B, E});
  mamba2_decode_step(ctx, w_gated, zv, TensorView<float, 3, Host>(conv_b2.data(), {B, C, K}),
                     TensorView<float, 4, Host>(ssm_b.data(), {B, H, P, N}), gated.view());
  std::vector<float> normed(size_t(B * E));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g) {
      double ss = 0;
      for (int64_t j = g * (E / G); j < (g + 1) * (E / G); ++j) ss += double(gated(b, j)) * gated(b, j);
      const double r = 1.0 / std::sqrt(ss / double(E / G) + eps);
      for (int64_t j = g * (E / G); j < (g + 1) * (E / G); ++j)
        normed[size_t(b * E + j)] = float(gated(b, j) * r * norm_w(j));
    }
  EXPECT_LT(relative_l2(normed, to_vector(y)), 1e-6);  // the same gated values; the norm in float vs double
  EXPECT_LT(relative_l2(to_vector(ssm_b), to_vector(ssm_a)), 1e-6);
}

TEST(Mamba2DecodeStep, RejectsWrongState) {
  Context<Host> ctx(1);
  Tensor<float, 2, Host> cw({40, 4}), zx({1, 40 + 4 + 2}), y({1, 8});
  Tensor<float, 1, Host> h2({2}), e8({8});
  Tensor<float, 3, Host> conv({1, 40, 4});
  Tensor<float, 4, Host> ssm({1, 2, 4, 15});  // N should be 16
  const Mamba2DecodeWeights<Host> w{cw.cview(), {}, h2.cview(), h2.cview(), {}, e8.cview(), 2, 4, 1, 16, 1e-5f, 0, 1};
  EXPECT_THROW(mamba2_decode_step(ctx, w, zx.cview(), conv.view(), ssm.view(), y.view()), InvalidArgument);
}

ModelConfig tiny_bimamba() {
  ModelConfig c;
  c.architecture = Architecture::Mamba2;
  c.binary = true;
  c.d_model = 96, c.n_layer = 3, c.vocab_size = 208, c.d_state = 16, c.headdim = 16, c.ngroups = 2;
  c.chunk_size = 8;
  return c;
}

// Logits of `steps` tokens fed one at a time (the state starts after a prefill of 5 tokens).
std::vector<float> decode_logits(Context<Host>& ctx, const LanguageModel<Host>& model, int64_t steps) {
  std::vector<int32_t> prompt = {3, 17, 101, 55, 8};
  auto state = model.new_state(1);
  model.forward(ctx, to<Host>(tensor_from<int32_t, 2>(prompt, {1, 5})), state);
  std::vector<float> out;
  Tensor<int32_t, 1, Host> id({1});
  for (int64_t t = 0; t < steps; ++t) {
    id(0) = int32_t((t * 37 + 11) % model.vocab_size());
    const auto logits = to_vector(model.step(ctx, id.cview(), state));
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

TEST(DecodeFastPath, WithinTiledKernelErrorOfExactPath) {
  Context<Host> ctx(2);
  auto model = init_random<Host>(tiny_bimamba(), 11);
  model.pack();
  const auto exact = decode_logits(ctx, model, 12);

  model.set_fast_path({false, true, false});  // fused step only: float rounding
  EXPECT_LT(relative_l2(decode_logits(ctx, model, 12), exact), 1e-5);

  // Tiled projections: ops/host/binary_linear_tiled.hpp documents ~7e-4 relative error per projection (6.8e-4
  // measured on uniform activations; bounded by half a quantization step per column). 3 layers x 2
  // projections, errors roughly independent: sqrt(6) x 7e-4 = 1.7e-3 expected, bf16 head adds about
  // 2^-9 / sqrt(3) = 1.1e-3 (uniform relative rounding of each weight); measured 2.0e-3 and 2.6e-3. The bounds
  // 6e-3 / 1e-2 leave about 3x headroom (activations of a random model are not uniform per block).
  model.set_fast_path({true, true, false});
  const double tiled_err = relative_l2(decode_logits(ctx, model, 12), exact);
  EXPECT_LT(tiled_err, 6e-3);
  EXPECT_GT(tiled_err, 0.0);  // the tiled kernel really ran (it quantizes, so it is never bit-exact here)
  model.set_fast_path({});
  const double fast_err = relative_l2(decode_logits(ctx, model, 12), exact);
  EXPECT_LT(fast_err, 1e-2);
  ::testing::Test::RecordProperty("tiled_rel_l2", std::to_string(tiled_err));
  ::testing::Test::RecordProperty("fast_rel_l2", std::to_string(fast_err));

  model.set_fast_path({false, false, false});  // back to the exact path, bit for bit
  EXPECT_EQ(decode_logits(ctx, model, 12), exact);
}

// Logits of `steps` tokens stepped from a fresh state, with `threads` threads.
std::vector<float> step_logits(int threads, const LanguageModel<Host>& model, int64_t steps) {
  Context<Host> ctx(threads);
  auto state = model.new_state(2);
  std::vector<float> out;
  Tensor<int32_t, 1, Host> ids({2});
  for (int64_t t = 0; t < steps; ++t) {
    ids(0) = int32_t((t * 37 + 11) % model.vocab_size()), ids(1) = int32_t((t * 53 + 5) % model.vocab_size());
    const auto logits = to_vector(model.step(ctx, ids.cview(), state));
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

// Every op of a decode step splits its work over threads by output rows / heads and computes each value
// the same way whatever the split (ops/host/mamba2_decode.hpp, dense_gemv.hpp, the tiled kernel), so the
// thread count does not change the logits at all: compared bit for bit, fast and exact path.
TEST(DecodeFastPath, LogitsDoNotDependOnThreadCount) {
  auto model = init_random<Host>(tiny_bimamba(), 13);
  model.pack();
  for (const bool fast : {true, false}) {
    model.set_fast_path({fast, fast, fast});
    const auto one = step_logits(1, model, 6);
    EXPECT_EQ(step_logits(2, model, 6), one) << "fast path " << fast;
    EXPECT_EQ(step_logits(3, model, 6), one) << "fast path " << fast;
  }
}

TEST(DecodeFastPath, GreedyTokensOfFixture) {
  Context<Host> ctx;
  auto model = load_model<Host>(ctx, data_path("bimamba2-tiny"));
  model.pack();
  model.set_fast_path({});
  const Fixture f = read_fixture("bimamba2-tiny");
  GenerationOptions options;
  options.max_new_tokens = int64_t(f.gen_ids.size());
  options.pad_token = 0;  // as tests/model/test_generate.cpp: HF masks the prompt's token 0
  EXPECT_EQ(generate(ctx, model, f.gen_prompt, options), f.gen_ids);
}

}  // namespace
}  // namespace bimamba::test
