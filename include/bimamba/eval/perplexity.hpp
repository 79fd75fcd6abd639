// Perplexity of a language model on token sequences.
//
// The model enters as a LogitsFunction: ids (T tokens) -> logits (T, V), row t scoring the token after ids[t].
// NLL of token y given logits row l: nll = logsumexp(l) - l[y] (computed in double).
//
// window_perplexity(tokens, W, logits): non-overlapping windows (the standard "stride = window" evaluation):
//   k = floor(n / W) windows, window w = tokens[w W, (w + 1) W); the last partial window is dropped;
//   each window is scored from an empty state, its first token is not predicted:
//   predicted = k (W - 1) tokens, ppl = exp(sum of NLL / predicted).
//   Needs W >= 2 and n >= W (InvalidArgument naming the numbers otherwise).
//
// rolling_perplexity(documents, max_len, prefix_token, logits): lm-eval's loglikelihood_rolling (context
// length 1). Per document, s = [prefix_token] + tokens; every token is predicted exactly once, from at most
// max_len tokens of context: windows of targets s[a+1 .. b] (b - a <= max_len, consecutive, covering the
// document) each scored with the input s[max(0, b - max_len) .. b - 1]. Summed over documents:
//   word_perplexity = exp(-LL / words), byte_perplexity = exp(-LL / bytes), bits_per_byte = -LL / bytes / ln 2,
// words = the number of pieces of the text split on runs of whitespace (Python re.split(r"\s+", text),
// empty pieces at the ends included, as lm-eval counts), bytes = UTF-8 bytes of the text.
//
// Both report progress through an optional callback (done, total) after each window.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../tensor/tensor.hpp"

namespace bimamba {

using LogitsFunction = std::function<Tensor<float, 2, Host>(const std::vector<int32_t>& ids)>;
using ProgressFunction = std::function<void(int64_t done, int64_t total)>;

// -log softmax(row)[target] in double; throws NumericError on a non-finite logit and InvalidArgument on a
// target outside [0, V).
inline double token_nll(const float* row, int64_t vocab, int32_t target) {
  BIMAMBA_CHECK(target >= 0 && target < vocab, "perplexity: target token ", target, " outside the vocabulary of ", vocab);
  double max = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) {
    if (!std::isfinite(row[v])) BIMAMBA_THROW(NumericError, "perplexity: logit ", v, " is ", row[v]);
    max = std::max(max, double(row[v]));
  }
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - max);
  return max + std::log(sum) - double(row[target]);
}

namespace detail {
// Sum of NLL of ids[first_target .. T) (first_target >= 1); the model sees ids[0 .. T - 1) (the last token is
// only a target), whose logits row t - 1 scores ids[t].
inline double score_span(const LogitsFunction& logits_fn, const std::vector<int32_t>& ids, int64_t first_target) {
  const int64_t T = int64_t(ids.size());
  const std::vector<int32_t> inputs(ids.begin(), ids.end() - 1);
  const Tensor<float, 2, Host> logits = logits_fn(inputs);
  BIMAMBA_CHECK(logits.size(0) == T - 1, "perplexity: the model returned ", logits.size(0), " logit rows for ", T - 1,
                " tokens");
  double nll = 0;
  for (int64_t t = first_target; t < T; ++t)
    nll += token_nll(logits.data() + (t - 1) * logits.size(1), logits.size(1), ids[size_t(t)]);
  return nll;
}
}  // namespace detail

struct PerplexityResult {
  double ppl = 0;        // exp(nll / predicted)
  double nll = 0;        // summed over predicted tokens
  int64_t predicted = 0; // tokens scored
  int64_t tokens = 0;    // tokens in the windows (k W)
  int64_t windows = 0;   // k

  nlohmann::ordered_json to_json() const {
    return {{"ppl", ppl}, {"tokens", tokens}, {"windows", windows}, {"predicted", predicted}, {"nll", nll}};
  }
};

inline PerplexityResult window_perplexity(const std::vector<int32_t>& tokens, int64_t window,
                                          const LogitsFunction& logits_fn, const ProgressFunction& progress = {}) {
  BIMAMBA_CHECK(window >= 2, "perplexity: the window must hold at least 2 tokens, got ", window);
  const int64_t n = int64_t(tokens.size());
  BIMAMBA_CHECK(n >= window, "perplexity: the text has ", n, " tokens, fewer than one window of ", window);
  PerplexityResult r;
  r.windows = n / window;
  r.tokens = r.windows * window;
  for (int64_t w = 0; w < r.windows; ++w) {
    const std::vector<int32_t> ids(tokens.begin() + w * window, tokens.begin() + (w + 1) * window);
    r.nll += detail::score_span(logits_fn, ids, 1);
    r.predicted += window - 1;
    if (progress) progress(w + 1, r.windows);
  }
  r.ppl = std::exp(r.nll / double(r.predicted));
  if (!std::isfinite(r.ppl)) BIMAMBA_THROW(NumericError, "perplexity: overflow (mean NLL ", r.nll / double(r.predicted), ")");
  return r;
}

struct Document {
  std::string text;
  std::vector<int32_t> tokens;  // the tokenized text (no BOS)
};

struct RollingResult {
  double loglikelihood = 0;  // summed over every token of every document
  int64_t tokens = 0;
  int64_t words = 0;
  int64_t bytes = 0;
  int64_t windows = 0;
  double word_perplexity = 0;
  double byte_perplexity = 0;
  double bits_per_byte = 0;

  nlohmann::ordered_json to_json() const {
    return {{"word_perplexity", word_perplexity}, {"byte_perplexity", byte_perplexity}, {"bits_per_byte", bits_per_byte},
            {"loglikelihood", loglikelihood},     {"tokens", tokens},                   {"words", words},
            {"bytes", bytes},                     {"windows", windows}};
  }
};

// Pieces of re.split(r"\s+", text) (ASCII whitespace, as Python's \s on the bytes that matter here).
inline int64_t count_words(const std::string& text) {
  auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  int64_t pieces = 1;
  for (size_t i = 0; i < text.size();) {
    if (space(static_cast<unsigned char>(text[i]))) {
      ++pieces;
      while (i < text.size() && space(static_cast<unsigned char>(text[i]))) ++i;
    } else {
      ++i;
    }
  }
  return pieces;
}

// The (first target, end) pairs of the rolling windows of a sequence s of n + 1 tokens (s[0] the prefix):
// windows of targets s[a + 1 .. b], b - a <= max_len.
inline std::vector<std::pair<int64_t, int64_t>> rolling_windows(int64_t n, int64_t max_len) {
  std::vector<std::pair<int64_t, int64_t>> windows;
  for (int64_t a = 0; a < n; a += max_len) windows.emplace_back(a + 1, std::min(n, a + max_len));
  return windows;
}

inline RollingResult rolling_perplexity(const std::vector<Document>& documents, int64_t max_len, int32_t prefix_token,
                                        const LogitsFunction& logits_fn, const ProgressFunction& progress = {}) {
  BIMAMBA_CHECK(max_len >= 1, "rolling perplexity: max_len must be positive, got ", max_len);
  RollingResult r;
  int64_t total = 0;
  for (const Document& d : documents) total += int64_t(rolling_windows(int64_t(d.tokens.size()), max_len).size());
  for (const Document& d : documents) {
    std::vector<int32_t> s{prefix_token};
    s.insert(s.end(), d.tokens.begin(), d.tokens.end());
    for (const auto& [first, last] : rolling_windows(int64_t(d.tokens.size()), max_len)) {
      const int64_t begin = std::max<int64_t>(0, last - max_len);
      const std::vector<int32_t> ids(s.begin() + begin, s.begin() + last + 1);
      // ids = s[begin .. last]: the model sees s[begin .. last - 1] (at most max_len tokens).
      r.loglikelihood -= detail::score_span(logits_fn, ids, first - begin);
      ++r.windows;
      if (progress) progress(r.windows, total);
    }
    r.tokens += int64_t(d.tokens.size());
    r.words += count_words(d.text);
    r.bytes += int64_t(d.text.size());
  }
  BIMAMBA_CHECK(r.tokens > 0 && r.bytes > 0, "rolling perplexity: the documents hold no tokens");
  r.word_perplexity = std::exp(-r.loglikelihood / double(r.words));
  r.byte_perplexity = std::exp(-r.loglikelihood / double(r.bytes));
  r.bits_per_byte = -r.loglikelihood / double(r.bytes) / std::log(2.0);
  return r;
}

}  // namespace bimamba
