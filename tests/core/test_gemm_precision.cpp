// GemmPrecision names: each precision's name parses back to it, and anything else is refused with the value in
// the message (what `bimamba train --precision` reports).
#include <bimamba/core/context.hpp>
#include <gtest/gtest.h>

#include <string>

namespace bimamba {
namespace {

TEST(GemmPrecision, NamesRoundTrip) {
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Tf32, GemmPrecision::Bf16})
    EXPECT_EQ(gemm_precision_from_string(to_string(p)), p) << to_string(p);
  EXPECT_STREQ(to_string(GemmPrecision::Bf16), "bf16");
}

TEST(GemmPrecision, UnknownNameIsRefusedByName) {
  for (const std::string bad : {"fp16", "", "BF16", "bf16 "}) {
    try {
      gemm_precision_from_string(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("got '" + bad + "'"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace bimamba
