// Reference FBI-Linear forward, naive and in double precision: the ground truth the fast kernels are tested
// and benchmarked against.
//
//   W_eff[i, j] = alpha[j] * s[i, j] + beta[j]            s in {-1, +1}
//   y[t, i]     = sum_j x[t, j] * W_eff[i, j]              (computed literally, term by term, in double)
//
// x (T, in), signs (out, in) as int8 +-1, alpha / beta (in), y (T, out); all row-major and dense.
// unpack_sign_words reads the documented bit layout (tensor/bit_tensor.hpp) on its own, bit by bit.
#pragma once

#include <cstdint>
#include <vector>

#include "../../core/error.hpp"

namespace bimamba::reference {

inline void binary_linear(const double* x, int64_t T, int64_t in, const int8_t* signs, int64_t out,
                          const double* alpha, const double* beta, double* y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < out; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < in; ++j) {
        const int s = signs[i * in + j];
        BIMAMBA_CHECK(s == 1 || s == -1, "reference::binary_linear: sign (", i, ", ", j, ") is ", s);
        acc += x[t * in + j] * (alpha[j] * s + beta[j]);
      }
      y[t * out + i] = acc;
    }
}

inline std::vector<double> binary_linear(const std::vector<double>& x, int64_t T, int64_t in,
                                         const std::vector<int8_t>& signs, int64_t out,
                                         const std::vector<double>& alpha, const std::vector<double>& beta) {
  BIMAMBA_CHECK(int64_t(x.size()) == T * in, "reference::binary_linear: x has ", x.size(), " values, expected ", T * in);
  BIMAMBA_CHECK(int64_t(signs.size()) == out * in, "reference::binary_linear: signs has ", signs.size(),
                " values, expected ", out * in);
  BIMAMBA_CHECK(int64_t(alpha.size()) == in && int64_t(beta.size()) == in, "reference::binary_linear: alpha / beta have ",
                alpha.size(), " / ", beta.size(), " values, expected ", in);
  std::vector<double> y(size_t(T * out));
  binary_linear(x.data(), T, in, signs.data(), out, alpha.data(), beta.data(), y.data());
  return y;
}

// The (rows, cols) signs of packed 32-bit words (words_per_row = ceil(cols / 32)): bit j % 32 of word j / 32,
// 1 -> +1, 0 -> -1. Padding bits are not read.
inline std::vector<int8_t> unpack_sign_words(const uint32_t* words, int64_t rows, int64_t cols) {
  const int64_t words_per_row = (cols + 31) / 32;
  std::vector<int8_t> signs(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      signs[size_t(i * cols + j)] = (words[i * words_per_row + j / 32] >> (j % 32)) & 1u ? 1 : -1;
  return signs;
}

}  // namespace bimamba::reference
