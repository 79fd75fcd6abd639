// Bit-packed sign tensors: the documented bit order (golden bytes), s(w) = +1 for w >= 0, padding bits zero,
// pack/unpack round trip on odd shapes, storage accounting, copies across backends.
#include "test_support.hpp"

namespace bimamba {
namespace {

TEST(BitTensor, GoldenBitOrder) {
  // Row 0: signs of columns 0..9 = + - - + + + - + - +   (w >= 0 -> bit 1, bit j at position j % W)
  // Row 1: all -1 except column 9 (+1) and column 0 (-0.0 counts as +1).
  const std::vector<float> w = {1, -1, -2, 0, 3, 0.5f, -0.1f, 2, -7, 4,  //
                                -0.0f, -1, -1, -1, -1, -1, -1, -1, -1, 1};
  auto weights = tensor_from<float, 2>(w, {2, 10});
  auto bits8 = pack_signs<uint8_t>(weights.cview());
  ASSERT_EQ(bits8.words_per_row(), 2);
  // bits j=0..7 of row 0: 1,0,0,1,1,1,0,1 -> 0b10111001 = 0xB9; j=8,9: 0,1 -> 0b10 = 0x02
  EXPECT_EQ(bits8.data()[0], 0xB9);
  EXPECT_EQ(bits8.data()[1], 0x02);
  EXPECT_EQ(bits8.data()[2], 0x01);
  EXPECT_EQ(bits8.data()[3], 0x02);

  auto bits32 = pack_signs<uint32_t>(weights.cview());
  EXPECT_EQ(bits32.data()[0], 0x2B9u);  // little-endian: the same bytes as the uint8_t packing
  EXPECT_EQ(bits32.data()[1], 0x201u);
  auto bits64 = pack_signs<uint64_t>(weights.cview());
  EXPECT_EQ(bits64.data()[0], 0x2B9u);
}

TEST(BitTensor, NaNWeightIsRefused) {
  auto weights = tensor_from<float, 2>({1, std::nanf(""), 2}, {1, 3});
  EXPECT_THROW(pack_signs<uint32_t>(weights.cview()), InvalidArgument);
}

template <class Word>
void check_round_trip(int64_t rows, int64_t cols, uint64_t seed) {
  auto values = test::random_floats(size_t(rows * cols), seed);
  auto weights = tensor_from<float, 2>(values, {rows, cols});
  auto bits = pack_signs<Word>(weights.cview());
  Tensor<float, 2, Host> signs({rows, cols});
  unpack_signs<Word>(bits.cview(), signs.view());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) ASSERT_EQ(signs(i, j), values[size_t(i * cols + j)] >= 0 ? 1.0f : -1.0f);
  // Padding bits are stored as zero.
  constexpr int W = kWordBits<Word>;
  const int64_t used = cols % W;
  if (used) {
    for (int64_t i = 0; i < rows; ++i) {
      EXPECT_EQ(Word(bits.view().row(i)[bits.words_per_row() - 1] >> used), Word(0));
    }
  }
  EXPECT_EQ(bits.payload_bits(), rows * cols);
  EXPECT_EQ(bits.storage_bytes(), size_t(rows * words_for<Word>(cols)) * sizeof(Word));
}

TEST(BitTensor, RoundTripOddShapes) {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 31}, {2, 33}, {7, 63}, {4, 65}, {9, 130}}) {
    check_round_trip<uint8_t>(r, c, uint64_t(r * 1000 + c));
    check_round_trip<uint32_t>(r, c, uint64_t(r * 1000 + c));
    check_round_trip<uint64_t>(r, c, uint64_t(r * 1000 + c));
  }
}

template <class Backend>
using BitTensorTest = test::BackendTest<Backend>;
TYPED_TEST_SUITE(BitTensorTest, test::Backends);

TYPED_TEST(BitTensorTest, CopiesAcrossBackendsKeepBits) {
  using B = TypeParam;
  auto weights = tensor_from<float, 2>(test::random_floats(5 * 70, 3), {5, 70});
  auto bits = pack_signs<uint32_t>(weights.cview());
  auto device = to<B>(bits);
  auto back = to<Host>(device);
  ASSERT_EQ(back.rows(), 5);
  ASSERT_EQ(back.cols(), 70);
  for (int64_t k = 0; k < 5 * back.words_per_row(); ++k) EXPECT_EQ(back.data()[k], bits.data()[k]);
}

}  // namespace
}  // namespace bimamba
