// Training data from a token file (io/token_file.hpp): a train / validation split by position, a
// reproducible random window sampler, and sequential windows for validation.
//
//   split_by_position(n, f): validation = the last round(f * n) tokens, train = everything before them.
//   WindowSampler: each batch is B windows of L + 1 consecutive tokens from a range; window b starts at
//       range.begin + (x mod (range.size() - L)),  x = the next output of std::mt19937_64 seeded with `seed`
//       (the modulo bias is below range.size() / 2^64). The engine's output sequence is fixed by the C++
//       standard, so the same seed gives the same batches everywhere. state() / restore() save and restore
//       the engine (operator<< text: libstdc++ writes the 312 state words and its index, other libraries
//       may differ, so a state moves between builds with the same standard library) and the number of
//       batches drawn, so a resumed run draws exactly the batches the uninterrupted one would have.
//   SequentialWindows: window w covers [begin + w L, begin + w L + L + 1) for w < floor((size - 1) / L):
//       every token after the first is a target exactly once; batch i holds windows [i B, min((i+1) B, W)).
//   Batch<Backend>: tokens (B, L + 1) int32 on the backend; inputs() = tokens[:, 0:L], targets() =
//       tokens[:, 1:L+1] (both (B, L) strided views).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "../core/context.hpp"
#include "../io/token_file.hpp"
#include "../tensor/copy.hpp"
#include "../tensor/tensor.hpp"

namespace bimamba {

struct TokenRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

struct TokenSplit {
  TokenRange train, validation;
};

inline TokenSplit split_by_position(int64_t n, double validation_fraction) {
  BIMAMBA_CHECK(n >= 0 && validation_fraction >= 0 && validation_fraction <= 1, "split_by_position: need n >= 0 (", n,
                ") and a fraction in [0, 1] (", validation_fraction, ")");
  const int64_t n_val = std::llround(validation_fraction * double(n));
  return {{0, n - n_val}, {n - n_val, n}};
}

template <class Backend>
struct Batch {
  Tensor<int32_t, 2, Backend> tokens;  // (B, L + 1)

  int64_t batch_size() const { return tokens.size(0); }
  int64_t length() const { return tokens.size(1) - 1; }
  TensorView<const int32_t, 2, Backend> inputs() const { return tokens.cview().narrow(1, 0, length()); }   // (B, L)
  TensorView<const int32_t, 2, Backend> targets() const { return tokens.cview().narrow(1, 1, length()); }  // (B, L)
};

namespace detail {
// Moves a host batch to the backend (a copy for Cuda; Cuda TUs include core/cuda_runtime.hpp).
template <class Backend>
Batch<Backend> batch_on(Tensor<int32_t, 2, Host>&& host) {
  if constexpr (is_host_v<Backend>) {
    return {std::move(host)};
  } else {
    return {to<Backend>(host)};
  }
}

inline void check_windows(const char* what, const TokenFile& file, TokenRange range, int64_t batch, int64_t length) {
  BIMAMBA_CHECK(batch >= 1 && length >= 1, what, ": need batch >= 1 and length >= 1, got ", batch, " and ", length);
  BIMAMBA_CHECK(range.begin >= 0 && range.begin <= range.end && range.end <= file.size(), what, ": range [",
                range.begin, ", ", range.end, ") outside the ", file.size(), " tokens of ", file.path());
  BIMAMBA_CHECK(range.size() >= length + 1, what, ": range [", range.begin, ", ", range.end, ") of ", file.path(),
                " holds ", range.size(), " tokens, fewer than one window of L + 1 = ", length + 1);
}
}  // namespace detail

// The sampler's resumable state: the random engine and the number of batches drawn.
struct SamplerState {
  std::string rng;      // std::mt19937_64 as operator<< writes it
  int64_t batches = 0;  // batches drawn so far (the data position)
};

class WindowSampler {
 public:
  WindowSampler(TokenFile file, TokenRange range, int64_t batch, int64_t length, uint64_t seed)
      : file_(std::move(file)), range_(range), batch_(batch), length_(length), rng_(seed) {
    detail::check_windows("WindowSampler", file_, range, batch, length);
  }

  int64_t batch_size() const { return batch_; }
  int64_t length() const { return length_; }
  TokenRange range() const { return range_; }

  // The next batch, (B, L + 1) tokens on the backend.
  template <class Backend>
  Batch<Backend> next(Context<Backend>&) {
    Tensor<int32_t, 2, Host> tokens({batch_, length_ + 1});
    const uint64_t starts = uint64_t(range_.size() - length_);
    for (int64_t b = 0; b < batch_; ++b) {
      const int64_t start = range_.begin + int64_t(rng_() % starts);
      file_.read(start, length_ + 1, &tokens(b, 0));
    }
    ++batches_;
    return detail::batch_on<Backend>(std::move(tokens));
  }

  int64_t batches_drawn() const { return batches_; }

  SamplerState state() const {
    std::ostringstream out;
    out << rng_;
    return {out.str(), batches_};
  }
  void restore(const SamplerState& state) {
    std::istringstream in(state.rng);
    std::mt19937_64 rng;
    in >> rng;
    BIMAMBA_CHECK(!in.fail(), "WindowSampler::restore: the rng text is not a std::mt19937_64 state");
    BIMAMBA_CHECK(state.batches >= 0, "WindowSampler::restore: negative batch count ", state.batches);
    rng_ = rng;
    batches_ = state.batches;
  }

 private:
  TokenFile file_;
  TokenRange range_;
  int64_t batch_, length_;
  std::mt19937_64 rng_;
  int64_t batches_ = 0;
};

class SequentialWindows {
 public:
  SequentialWindows(TokenFile file, TokenRange range, int64_t batch, int64_t length)
      : file_(std::move(file)), range_(range), batch_(batch), length_(length) {
    detail::check_windows("SequentialWindows", file_, range, batch, length);
  }

  int64_t windows() const { return (range_.size() - 1) / length_; }
  int64_t batches() const { return (windows() + batch_ - 1) / batch_; }

  // Batch i: (rows, L + 1) with rows = B except possibly for the last batch.
  template <class Backend>
  Batch<Backend> batch(Context<Backend>&, int64_t i) const {
    BIMAMBA_CHECK(i >= 0 && i < batches(), "SequentialWindows: batch ", i, " outside [0, ", batches(), ")");
    const int64_t first = i * batch_;
    const int64_t rows = std::min(batch_, windows() - first);
    Tensor<int32_t, 2, Host> tokens({rows, length_ + 1});
    for (int64_t r = 0; r < rows; ++r) file_.read(range_.begin + (first + r) * length_, length_ + 1, &tokens(r, 0));
    return detail::batch_on<Backend>(std::move(tokens));
  }

 private:
  TokenFile file_;
  TokenRange range_;
  int64_t batch_, length_;
};

}  // namespace bimamba
