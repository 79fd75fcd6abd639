// Learning-rate schedules (train/schedule.hpp) at their boundaries.
#include <gtest/gtest.h>

#include <bimamba/train/schedule.hpp>

namespace bimamba {
namespace {

TEST(Schedule, CosineWarmupPeakDecayFloor) {
  const CosineSchedule s(1e-3f, 1e-4f, 10, 110);
  EXPECT_FLOAT_EQ(s(0), 1e-4f);  // (0 + 1) / 10 of the peak
  EXPECT_FLOAT_EQ(s(4), 5e-4f);
  EXPECT_FLOAT_EQ(s(9), 1e-3f);     // warmup ends at the peak
  EXPECT_FLOAT_EQ(s(10), 1e-3f);    // decay starts at the peak
  EXPECT_FLOAT_EQ(s(60), 5.5e-4f);  // half way: (max + min) / 2
  EXPECT_GT(s(109), 1e-4f);
  EXPECT_LT(s(109), 1.01e-4f);
  EXPECT_FLOAT_EQ(s(110), 1e-4f);  // the floor from total on
  EXPECT_FLOAT_EQ(s(1000000), 1e-4f);
  for (int64_t t = 10; t < 110; ++t) EXPECT_LE(s(t + 1), s(t)) << t;  // monotone decay
}

TEST(Schedule, CosineWithoutWarmup) {
  const CosineSchedule s(2.0f, 0.0f, 0, 4);
  EXPECT_FLOAT_EQ(s(0), 2.0f);
  EXPECT_FLOAT_EQ(s(2), 1.0f);
  EXPECT_FLOAT_EQ(s(4), 0.0f);
}

TEST(Schedule, LinearAndConstant) {
  const LinearSchedule lin(1.0f, 0.2f, 2, 6);
  EXPECT_FLOAT_EQ(lin(0), 0.5f);
  EXPECT_FLOAT_EQ(lin(1), 1.0f);
  EXPECT_FLOAT_EQ(lin(2), 1.0f);
  EXPECT_FLOAT_EQ(lin(4), 0.6f);
  EXPECT_FLOAT_EQ(lin(6), 0.2f);
  const ConstantSchedule c(3.0f, 3);
  EXPECT_FLOAT_EQ(c(0), 1.0f);
  EXPECT_FLOAT_EQ(c(2), 3.0f);
  EXPECT_FLOAT_EQ(c(100), 3.0f);
  EXPECT_FLOAT_EQ(ConstantSchedule(0.5f)(0), 0.5f);
}

TEST(Schedule, RejectsBadArguments) {
  EXPECT_THROW(CosineSchedule(1e-4f, 1e-3f, 0, 10), InvalidArgument);  // floor above the peak
  EXPECT_THROW(CosineSchedule(1e-3f, 0.0f, 11, 10), InvalidArgument);  // warmup past the end
  EXPECT_THROW(LinearSchedule(1.0f, 0.0f, -1, 10), InvalidArgument);
  EXPECT_THROW(ConstantSchedule(-1.0f), InvalidArgument);
}

}  // namespace
}  // namespace bimamba
