// Perplexity: non-overlapping windows and lm-eval rolling windows, on the bimamba2-tiny fixture logits
// (the expected NLL is computed here directly from those logits) and on models whose answer is known in
// closed form (uniform logits: ppl = V exactly).
#include <bimamba/eval/perplexity.hpp>
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/load.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <test_support.hpp>
#include <vector>

namespace bimamba {
namespace {

// The fixture: input_ids [B, T] and the exact logits [B, T, V] of the bimamba2-tiny model.
struct FixtureLogits {
  std::vector<int64_t> ids;
  std::vector<float> logits;
  int64_t B = 0, T = 0, V = 0;

  FixtureLogits() {
    const SafetensorsFile f(test::data_path("bimamba2-tiny/reference.safetensors"));
    const HostTensor l = f.get("logits");
    ids = to_int64(f.get("input_ids"));
    logits = to_float(l);
    B = l.shape[0], T = l.shape[1], V = l.shape[2];
  }

  // A causal "model" that knows only the fixture rows: ids must be a prefix of one of them.
  LogitsFunction model() const {
    return [this](const std::vector<int32_t>& x) {
      for (int64_t b = 0; b < B; ++b) {
        bool match = int64_t(x.size()) <= T;
        for (size_t t = 0; match && t < x.size(); ++t) match = ids[size_t(b * T) + t] == x[t];
        if (!match) continue;
        Tensor<float, 2, Host> out({int64_t(x.size()), V});
        std::copy_n(logits.begin() + b * T * V, x.size() * size_t(V), out.data());
        return out;
      }
      ADD_FAILURE() << "the fixture model was asked about a sequence it does not know";
      return Tensor<float, 2, Host>({int64_t(x.size()), V});
    };
  }

  // -log p(ids[b][t] | ids[b][< t]) from the fixture logits, in long double.
  long double nll(int64_t b, int64_t t) const {
    const float* row = logits.data() + (b * T + t - 1) * V;
    long double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp((long double)row[v]);
    return std::log(sum) - (long double)row[ids[size_t(b * T + t)]];
  }
};

TEST(Perplexity, WindowsOfTheFixtureRowsMatchTheFixtureLogits) {
  const FixtureLogits fx;
  ASSERT_EQ(fx.B, 2);
  // The two rows one after the other, plus 5 tokens of a third window that must be dropped.
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < fx.B * fx.T; ++i) tokens.push_back(int32_t(fx.ids[size_t(i)]));
  for (int i = 0; i < 5; ++i) tokens.push_back(int32_t(fx.ids[size_t(i)]));

  long double expected = 0;
  for (int64_t b = 0; b < fx.B; ++b)
    for (int64_t t = 1; t < fx.T; ++t) expected += fx.nll(b, t);
  const double expected_ppl = double(std::exp(expected / (fx.B * (fx.T - 1))));

  std::vector<int64_t> progress;
  const PerplexityResult r =
      window_perplexity(tokens, fx.T, fx.model(), [&](int64_t done, int64_t total) { progress.push_back(done * 10 + total); });
  EXPECT_EQ(r.windows, 2);
  EXPECT_EQ(r.tokens, 2 * fx.T);
  EXPECT_EQ(r.predicted, 2 * (fx.T - 1));
  EXPECT_EQ(progress, (std::vector<int64_t>{12, 22}));
  // Double sums of 40 float logit rows: agreement to ~1e-12 relative; 1e-10 leaves room for libm.
  EXPECT_NEAR(r.nll, double(expected), 1e-10 * double(expected));
  EXPECT_NEAR(r.ppl, expected_ppl, 1e-10 * expected_ppl);
  EXPECT_GT(r.ppl, 1.0);
}

// The real model (latent and packed paths) on the two fixture rows as two windows gives the fixture's value.
TEST(Perplexity, TinyBiMambaModelMatchesTheFixtureValue) {
  const FixtureLogits fx;
  std::vector<int32_t> tokens(fx.ids.begin(), fx.ids.end());
  long double expected = 0;
  for (int64_t b = 0; b < fx.B; ++b)
    for (int64_t t = 1; t < fx.T; ++t) expected += fx.nll(b, t);
  const double expected_ppl = double(std::exp(expected / (fx.B * (fx.T - 1))));
  Context<Host> ctx(1);
  LanguageModel<Host> model = load_model(ctx, test::data_path("bimamba2-tiny"));
  const LogitsFunction logits = [&](const std::vector<int32_t>& ids) {
    const auto x = tensor_from<int32_t, 2>(ids, {1, int64_t(ids.size())});
    const Tensor<float, 3, Host> out = model.forward(ctx, x.cview());
    Tensor<float, 2, Host> rows({int64_t(ids.size()), model.vocab_size()});
    std::copy_n(out.data(), rows.numel(), rows.data());
    return rows;
  };
  for (bool packed : {false, true}) {
    if (packed) model.pack();
    const PerplexityResult r = window_perplexity(tokens, fx.T, logits);
    EXPECT_EQ(r.windows, 2);
    // Float32 logits within 1e-5 relative L2 of the float64 ones: the mean NLL moves by far less than 1e-4.
    EXPECT_NEAR(r.ppl, expected_ppl, 1e-4 * expected_ppl) << (packed ? "packed" : "latent");
  }
}

LogitsFunction uniform_model(int64_t vocab, std::vector<std::vector<int32_t>>* seen = nullptr) {
  return [=](const std::vector<int32_t>& x) {
    if (seen) seen->push_back(x);
    return Tensor<float, 2, Host>({int64_t(x.size()), vocab});
  };
}

TEST(Perplexity, UniformModelHasPerplexityV) {
  const std::vector<int32_t> tokens(100, 3);
  std::vector<std::vector<int32_t>> seen;
  const PerplexityResult r = window_perplexity(tokens, 16, uniform_model(50, &seen));
  EXPECT_EQ(r.windows, 6);  // 96 of the 100 tokens; the partial window of 4 is dropped
  EXPECT_EQ(r.predicted, 6 * 15);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0].size(), 15u);  // the last token of a window is only a target
  // exp(log 50) in double: a few ulp.
  EXPECT_NEAR(r.ppl, 50.0, 1e-12);
}

TEST(Perplexity, RejectsBadWindowsAndTokens) {
  const std::vector<int32_t> tokens(10, 1);
  EXPECT_THROW(window_perplexity(tokens, 1, uniform_model(4)), InvalidArgument);
  EXPECT_THROW(window_perplexity(tokens, 11, uniform_model(4)), InvalidArgument);
  EXPECT_THROW(window_perplexity(std::vector<int32_t>(10, 7), 5, uniform_model(4)), InvalidArgument);  // id >= V
}

TEST(Perplexity, NonFiniteLogitsAreANumericError) {
  const LogitsFunction nan_model = [](const std::vector<int32_t>& x) {
    Tensor<float, 2, Host> out({int64_t(x.size()), 4});
    out(0, 2) = NAN;
    return out;
  };
  EXPECT_THROW(window_perplexity(std::vector<int32_t>(8, 1), 4, nan_model), NumericError);
}

TEST(RollingPerplexity, WindowsPredictEveryTokenOnceWithBoundedContext) {
  // 10 tokens, max_len 4, prefix 0: s = [0, 1..10]; targets s[1..4], s[5..8], s[9..10];
  // inputs s[0..3], s[4..7], s[6..9] (the last window keeps a full context of 4).
  Document doc{"one two  three\nfour", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
  std::vector<std::vector<int32_t>> seen;
  const RollingResult r = rolling_perplexity({doc}, 4, 0, uniform_model(16, &seen));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(seen[1], (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(seen[2], (std::vector<int32_t>{6, 7, 8, 9}));
  EXPECT_EQ(r.tokens, 10);
  EXPECT_EQ(r.words, 4);
  EXPECT_EQ(r.bytes, 19);
  // Uniform over 16: LL = -10 log 16 exactly up to rounding of the double logsumexp.
  const double ll = -10 * std::log(16.0);
  EXPECT_NEAR(r.loglikelihood, ll, 1e-12);
  EXPECT_NEAR(r.word_perplexity, std::exp(-ll / 4), 1e-9);
  EXPECT_NEAR(r.byte_perplexity, std::exp(-ll / 19), 1e-12);
  EXPECT_NEAR(r.bits_per_byte, -ll / 19 / std::log(2.0), 1e-12);
}

TEST(RollingPerplexity, FixtureRowAsOneDocumentMatchesTheFixture) {
  // Row 0 without its first token is a document whose prefix token is that first token: with max_len
  // >= T the one window is the fixture row itself.
  const FixtureLogits fx;
  Document doc{"x", {}};
  for (int64_t t = 1; t < fx.T; ++t) doc.tokens.push_back(int32_t(fx.ids[size_t(t)]));
  long double expected = 0;
  for (int64_t t = 1; t < fx.T; ++t) expected -= fx.nll(0, t);
  const RollingResult r = rolling_perplexity({doc}, fx.T, int32_t(fx.ids[0]), fx.model());
  EXPECT_EQ(r.windows, 1);
  // Same double sum as above: 1e-10 relative.
  EXPECT_NEAR(r.loglikelihood, double(expected), 1e-10 * std::fabs(double(expected)));
}

TEST(RollingPerplexity, WordsCountLikePythonReSplit) {
  EXPECT_EQ(count_words("a b  c"), 3);
  EXPECT_EQ(count_words(" a"), 2);   // re.split gives ['', 'a']
  EXPECT_EQ(count_words("a\n"), 2);  // ['a', '']
  EXPECT_EQ(count_words(""), 1);     // ['']
}

}  // namespace
}  // namespace bimamba
