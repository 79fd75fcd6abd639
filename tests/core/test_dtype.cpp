// dtype conversions: bfloat16 and float16 round to nearest even, keep Inf/NaN, handle subnormals; names.
#include <bimamba/core/dtype.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace bimamba {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(BFloat16, ExactValuesRoundTrip) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 3.140625f, 1e-38f * 0.0f, 65536.0f})
    EXPECT_EQ(float(bfloat16(v)), v) << v;
}

TEST(BFloat16, RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even -> 1.0.
  EXPECT_EQ(float(bfloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd mantissa) and 1+2^-6 (even): ties to even -> 1 + 2^-6.
  EXPECT_EQ(float(bfloat16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  // Just above halfway rounds up.
  EXPECT_EQ(float(bfloat16(from_bits(0x3f808001u))), from_bits(0x3f810000u));
}

TEST(BFloat16, InfAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float(bfloat16(inf)), inf);
  EXPECT_EQ(float(bfloat16(-inf)), -inf);
  EXPECT_TRUE(std::isnan(float(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low bits must not round into Inf.
  EXPECT_TRUE(std::isnan(float(bfloat16(from_bits(0x7f800001u)))));
}

TEST(Float16, KnownEncodings) {
  EXPECT_EQ(float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float16(-2.0f).bits, 0xc000);
  EXPECT_EQ(float16(65504.0f).bits, 0x7bff);                     // largest finite
  EXPECT_EQ(float16(65520.0f).bits, 0x7c00);                     // halfway to 2^16 rounds to Inf
  EXPECT_EQ(float16(std::ldexp(1.0f, -24)).bits, 0x0001);        // smallest subnormal
  EXPECT_EQ(float16(std::ldexp(1.0f, -25)).bits, 0x0000);        // half of it: ties to even (0)
  EXPECT_EQ(float16(std::ldexp(1.5f, -25)).bits, 0x0001);        // above half rounds up
  EXPECT_EQ(float16(std::ldexp(1.0f, -14)).bits, 0x0400);        // smallest normal
  EXPECT_EQ(float16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);  // tie to even
  EXPECT_EQ(float16(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3c02);
  EXPECT_TRUE(std::isnan(float(float16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Float16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = float16::to_float(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float16(f).bits, h) << std::hex << h;
  }
}

TEST(DType, NamesAndSizes) {
  for (DType t : kAllDTypes) EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::Bool), 1u);
  EXPECT_THROW(dtype_from_name("F128"), FormatError);
}

}  // namespace
}  // namespace bimamba
