// TiledSigns: the signs of a packed FBI-Linear weight re-laid out for the host shuffle kernel
// (binary_linear_shuffle.hpp): the same bits, in the same number of bytes (plus the rows of a last partial
// tile), ordered so that one 32-byte load holds one byte of each of 32 consecutive rows.
//
//   tile r = rows [32 r, 32 r + 32), byte position p = columns [8 p, 8 p + 8), p < P = 4 * words_per_row
//   data[(r * P + p) * 32 + slot(i)] = byte p of row 32 r + i   (0 for rows >= rows())
//   slot(i) = 16 * ((i / 4) % 2) + 8 * (i / 16) + 2 * (i % 4) + (i / 8) % 2
//
// slot() is the inverse of the order in which the AVX2 kernel's unpack / multiply-add steps deliver rows
// (see the kernel), so that its four 8-float accumulators hold rows 0-7, 8-15, 16-23, 24-31 in order.
// Built once from a BitTensor (at model load); copying back (to_bits) restores the standard layout exactly,
// padding bits included.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "../../core/memory.hpp"
#include "../../tensor/bit_tensor.hpp"

namespace bimamba {

class TiledSigns {
 public:
  static constexpr int kTileRows = 32;

  static constexpr int slot(int i) { return 16 * ((i / 4) % 2) + 8 * (i / 16) + 2 * (i % 4) + (i / 8) % 2; }

  TiledSigns() = default;
  explicit TiledSigns(BitTensorView<const uint32_t, Host> signs)
      : rows_(signs.rows()), cols_(signs.cols()), words_per_row_(signs.words_per_row()) {
    data_ = static_cast<uint8_t*>(MemoryOps<Host>::allocate(storage_bytes()));
    MemoryOps<Host>::fill_zero(data_, storage_bytes());
    const int64_t P = positions();
    for (int64_t i = 0; i < rows_; ++i) {
      const auto* row = reinterpret_cast<const uint8_t*>(signs.row(i));  // little-endian: byte p = columns 8p..
      uint8_t* tile = data_ + (i / kTileRows) * P * kTileRows + slot(int(i % kTileRows));
      for (int64_t p = 0; p < P; ++p) tile[p * kTileRows] = row[p];
    }
  }
  TiledSigns(const TiledSigns&) = delete;
  TiledSigns& operator=(const TiledSigns&) = delete;
  TiledSigns(TiledSigns&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), rows_(std::exchange(o.rows_, 0)), cols_(std::exchange(o.cols_, 0)),
        words_per_row_(std::exchange(o.words_per_row_, 0)) {}
  TiledSigns& operator=(TiledSigns&& o) noexcept {
    if (this != &o) {
      if (data_) MemoryOps<Host>::deallocate(data_);
      data_ = std::exchange(o.data_, nullptr);
      rows_ = std::exchange(o.rows_, 0);
      cols_ = std::exchange(o.cols_, 0);
      words_per_row_ = std::exchange(o.words_per_row_, 0);
    }
    return *this;
  }
  ~TiledSigns() {
    if (data_) MemoryOps<Host>::deallocate(data_);
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t words_per_row() const { return words_per_row_; }
  int64_t positions() const { return 4 * words_per_row_; }  // bytes per row
  int64_t tiles() const { return (rows_ + kTileRows - 1) / kTileRows; }
  size_t storage_bytes() const { return size_t(tiles() * kTileRows * positions()); }
  const uint8_t* data() const { return data_; }
  const uint8_t* tile(int64_t r) const { return data_ + r * positions() * kTileRows; }

  // The standard layout again (bit for bit).
  void to_bits(BitTensorView<uint32_t, Host> out) const {
    BIMAMBA_CHECK(out.rows() == rows_ && out.cols() == cols_, "TiledSigns::to_bits: output (", out.rows(), ", ",
                  out.cols(), ") differs from (", rows_, ", ", cols_, ")");
    for (int64_t i = 0; i < rows_; ++i) {
      auto* row = reinterpret_cast<uint8_t*>(out.row(i));
      const uint8_t* t = tile(i / kTileRows) + slot(int(i % kTileRows));
      for (int64_t p = 0; p < positions(); ++p) row[p] = t[p * kTileRows];
    }
  }

 private:
  uint8_t* data_ = nullptr;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  int64_t words_per_row_ = 0;
};

}  // namespace bimamba
