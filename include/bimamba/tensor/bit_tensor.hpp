// Bit-packed sign matrices: the storage of binarized (FBI-Linear) weights.
//
// A BitTensor<Word, Backend> holds an (rows x cols) matrix of signs s in {-1, +1}, packed along cols (the
// reduction dimension, in_features), each row padded to a whole number of words:
//
//   words_per_row = ceil(cols / W),  W = 8 * sizeof(Word)
//   sign (i, j) is bit (j % W) of word data[i * words_per_row + j / W];  bit 0 is the least significant
//   bit value 1 means +1, 0 means -1;  s(w) = +1 for w >= 0, -1 otherwise (also for -0.0; NaN refused)
//   padding bits (j >= cols in the last word of a row) are always stored as 0
//
// The bit order is little-endian within a word, so on little-endian machines the packed rows read as bytes
// are identical for every Word type (bit j of a row is bit j % 8 of byte j / 8). tests pin it with a golden.
// Kernels must never let padding bits leak: they read them as -1 against activations that are zero-padded,
// or mask them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../core/memory.hpp"
#include "tensor_view.hpp"

namespace bimamba {

template <class Word>
inline constexpr int kWordBits = int(8 * sizeof(Word));

template <class Word>
BIMAMBA_HOST_DEVICE constexpr int64_t words_for(int64_t cols) {
  return (cols + kWordBits<Word> - 1) / kWordBits<Word>;
}

// Number of set bits.
template <class Word>
BIMAMBA_HOST_DEVICE inline int popcount(Word w) {
  static_assert(std::is_unsigned_v<Word>, "popcount needs an unsigned word");
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(Word) == 8) return __popcll(static_cast<unsigned long long>(w));
  else return __popc(static_cast<unsigned>(w));
#elif defined(__GNUC__) || defined(__clang__)
  if constexpr (sizeof(Word) == 8) return __builtin_popcountll(static_cast<unsigned long long>(w));
  else return __builtin_popcount(static_cast<unsigned>(w));
#else
  int n = 0;
  for (; w; w &= Word(w - 1)) ++n;
  return n;
#endif
}

template <class Word, class Backend>
class BitTensorView {
  static_assert(std::is_unsigned_v<std::remove_const_t<Word>>, "BitTensor words must be unsigned integers");

 public:
  using word_type = Word;
  using backend_type = Backend;

  BitTensorView() = default;
  BIMAMBA_HOST_DEVICE BitTensorView(Word* data, int64_t rows, int64_t cols)
      : data_(data), rows_(rows), cols_(cols), words_per_row_(words_for<std::remove_const_t<Word>>(cols)) {}

  template <class U, class = std::enable_if_t<std::is_same_v<const U, Word> && !std::is_same_v<U, Word>>>
  BIMAMBA_HOST_DEVICE BitTensorView(const BitTensorView<U, Backend>& other)
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()), words_per_row_(other.words_per_row()) {}

  BIMAMBA_HOST_DEVICE Word* data() const { return data_; }
  BIMAMBA_HOST_DEVICE Word* row(int64_t i) const { return data_ + i * words_per_row_; }
  BIMAMBA_HOST_DEVICE int64_t rows() const { return rows_; }
  BIMAMBA_HOST_DEVICE int64_t cols() const { return cols_; }
  BIMAMBA_HOST_DEVICE int64_t words_per_row() const { return words_per_row_; }
  BIMAMBA_HOST_DEVICE int64_t words() const { return rows_ * words_per_row_; }

  // +1 or -1 (host or device code with access to the memory).
  BIMAMBA_HOST_DEVICE int sign(int64_t i, int64_t j) const {
    constexpr int W = kWordBits<std::remove_const_t<Word>>;
    return (row(i)[j / W] >> (j % W)) & 1 ? 1 : -1;
  }

  // The words as a (rows, words_per_row) tensor view.
  BIMAMBA_HOST_DEVICE TensorView<Word, 2, Backend> words_view() const { return {data_, {rows_, words_per_row_}}; }

 private:
  Word* data_ = nullptr;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  int64_t words_per_row_ = 0;
};

// Owning bit-packed matrix; move-only; new tensors hold all -1 (every bit 0, padding included).
template <class Word, class Backend>
class BitTensor {
 public:
  using word_type = Word;
  using backend_type = Backend;

  BitTensor() = default;
  BitTensor(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {
    BIMAMBA_CHECK(rows >= 0 && cols >= 0, "BitTensor: negative shape (", rows, ", ", cols, ")");
    data_ = static_cast<Word*>(MemoryOps<Backend>::allocate(storage_bytes()));
    MemoryOps<Backend>::fill_zero(data_, storage_bytes());
  }
  BitTensor(const BitTensor&) = delete;
  BitTensor& operator=(const BitTensor&) = delete;
  BitTensor(BitTensor&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), rows_(std::exchange(o.rows_, 0)), cols_(std::exchange(o.cols_, 0)) {}
  BitTensor& operator=(BitTensor&& o) noexcept {
    if (this != &o) {
      if (data_) MemoryOps<Backend>::deallocate(data_);
      data_ = std::exchange(o.data_, nullptr);
      rows_ = std::exchange(o.rows_, 0);
      cols_ = std::exchange(o.cols_, 0);
    }
    return *this;
  }
  ~BitTensor() {
    if (data_) MemoryOps<Backend>::deallocate(data_);
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t words_per_row() const { return words_for<Word>(cols_); }
  Word* data() { return data_; }
  const Word* data() const { return data_; }

  BitTensorView<Word, Backend> view() { return {data_, rows_, cols_}; }
  BitTensorView<const Word, Backend> view() const { return {data_, rows_, cols_}; }
  BitTensorView<const Word, Backend> cview() const { return {data_, rows_, cols_}; }
  operator BitTensorView<Word, Backend>() { return view(); }
  operator BitTensorView<const Word, Backend>() const { return cview(); }

  // Storage accounting: the signs themselves, and what the padded rows occupy.
  int64_t payload_bits() const { return rows_ * cols_; }
  int64_t storage_bits() const { return rows_ * words_per_row() * kWordBits<Word>; }
  size_t storage_bytes() const { return size_t(rows_ * words_per_row()) * sizeof(Word); }

 private:
  Word* data_ = nullptr;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
};

// Packs s(w) of a host (rows, cols) float matrix into a host BitTensorView of the same logical shape.
// Padding bits are cleared. Throws InvalidArgument on a NaN weight (its sign is undefined), naming its index.
template <class Word>
void pack_signs(TensorView<const float, 2, Host> weights, BitTensorView<Word, Host> out) {
  BIMAMBA_CHECK(out.rows() == weights.size(0) && out.cols() == weights.size(1), "pack_signs: weights ",
                shape_string<2>(weights.shape()), " do not match bit tensor (", out.rows(), ", ", out.cols(), ")");
  constexpr int W = kWordBits<Word>;
  for (int64_t i = 0; i < out.rows(); ++i) {
    Word* row = out.row(i);
    for (int64_t k = 0; k < out.words_per_row(); ++k) {
      Word word = 0;
      const int64_t j0 = k * W;
      const int64_t n = std::min<int64_t>(W, out.cols() - j0);
      for (int64_t b = 0; b < n; ++b) {
        const float w = weights(i, j0 + b);
        BIMAMBA_CHECK(!std::isnan(w), "pack_signs: weight (", i, ", ", j0 + b, ") is NaN");
        if (!(w < 0.0f)) word |= Word(Word(1) << b);  // w >= 0 (including -0.0) -> +1
      }
      row[k] = word;
    }
  }
}

template <class Word>
BitTensor<Word, Host> pack_signs(TensorView<const float, 2, Host> weights) {
  BitTensor<Word, Host> out(weights.size(0), weights.size(1));
  pack_signs<Word>(weights, out.view());
  return out;
}

// Writes the +-1 signs of a host BitTensorView into a (rows, cols) float matrix.
template <class Word>
void unpack_signs(BitTensorView<const Word, Host> bits, TensorView<float, 2, Host> out) {
  BIMAMBA_CHECK(out.size(0) == bits.rows() && out.size(1) == bits.cols(), "unpack_signs: output ",
                shape_string<2>(out.shape()), " does not match bit tensor (", bits.rows(), ", ", bits.cols(), ")");
  for (int64_t i = 0; i < bits.rows(); ++i)
    for (int64_t j = 0; j < bits.cols(); ++j) out(i, j) = float(bits.sign(i, j));
}

// Copies a BitTensor to another backend (bit layout unchanged).
template <class Dst, class Word, class Src>
BitTensor<Word, Dst> to(const BitTensor<Word, Src>& src) {
  BitTensor<Word, Dst> out(src.rows(), src.cols());
  const size_t bytes = src.storage_bytes();
  if constexpr (is_host_v<Src> && is_host_v<Dst>) MemoryOps<Host>::copy_within(out.data(), src.data(), bytes);
  else if constexpr (is_host_v<Src>) MemoryOps<Dst>::copy_from_host(out.data(), src.data(), bytes);
  else if constexpr (is_host_v<Dst>) MemoryOps<Src>::copy_to_host(out.data(), src.data(), bytes);
  else MemoryOps<Dst>::copy_within(out.data(), src.data(), bytes);
  return out;
}

}  // namespace bimamba
