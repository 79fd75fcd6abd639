// Training data (train/data.hpp): split by position, the seeded window sampler (reproducible, inside its
// range, resumable from its state), sequential validation windows.
#include <gtest/gtest.h>

#include <bimamba/train/data.hpp>
#include <filesystem>

#include "temp_path.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 1009;  // prime: token i is i % kVocab, so a window's tokens reveal its start

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::temp_path("corpus.tokens");
    std::vector<int32_t> tokens(5000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i % kVocab);
    write_token_file(path_, tokens, kVocab);
  }
  void TearDown() override { fs::remove(path_); }
  TokenFile file() const { return TokenFile::open(path_); }

  std::string path_;
  Context<Host> ctx_;
};

std::vector<int32_t> flat(const Batch<Host>& b) {
  return std::vector<int32_t>(b.tokens.data(), b.tokens.data() + b.tokens.numel());
}

TEST(DataSplit, ValidationIsTheTail) {
  const TokenSplit s = split_by_position(1000, 0.1);
  EXPECT_EQ(s.train.begin, 0);
  EXPECT_EQ(s.train.end, 900);
  EXPECT_EQ(s.validation.begin, 900);
  EXPECT_EQ(s.validation.end, 1000);
  EXPECT_EQ(split_by_position(10, 0.0).validation.size(), 0);
  EXPECT_THROW(split_by_position(10, 1.5), InvalidArgument);
}

TEST_F(DataTest, WindowsAreContiguousInsideTheRangeAndFollowTheSeed) {
  const TokenRange range{100, 900};
  const int64_t B = 4, L = 16;
  WindowSampler sampler(file(), range, B, L, 42);
  std::mt19937_64 expected_rng(42);  // the documented start rule
  for (int step = 0; step < 50; ++step) {
    const Batch<Host> batch = sampler.next(ctx_);
    ASSERT_EQ(batch.tokens.size(0), B);
    ASSERT_EQ(batch.tokens.size(1), L + 1);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = range.begin + int64_t(expected_rng() % uint64_t(range.size() - L));
      for (int64_t j = 0; j <= L; ++j) ASSERT_EQ(batch.tokens(b, j), (start + j) % kVocab) << step << " " << b;
    }
  }
  EXPECT_EQ(sampler.batches_drawn(), 50);
}

TEST_F(DataTest, SameSeedSameBatchesOtherSeedOthers) {
  WindowSampler a(file(), {0, 5000}, 3, 8, 7), b(file(), {0, 5000}, 3, 8, 7), c(file(), {0, 5000}, 3, 8, 8);
  bool differs = false;
  for (int i = 0; i < 5; ++i) {
    const auto x = flat(a.next(ctx_));
    EXPECT_EQ(x, flat(b.next(ctx_)));
    differs |= x != flat(c.next(ctx_));
  }
  EXPECT_TRUE(differs);
}

TEST_F(DataTest, RestoredStateContinuesTheSameStream) {
  WindowSampler run(file(), {0, 4000}, 2, 32, 123);
  for (int i = 0; i < 3; ++i) run.next(ctx_);
  const SamplerState saved = run.state();
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(flat(run.next(ctx_)));

  WindowSampler resumed(file(), {0, 4000}, 2, 32, /*seed=*/999);
  resumed.restore(saved);
  EXPECT_EQ(resumed.batches_drawn(), 3);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(flat(resumed.next(ctx_)), expected[size_t(i)]) << i;
  EXPECT_THROW(resumed.restore({"not a state", 0}), InvalidArgument);
}

TEST_F(DataTest, InputsAndTargetsAreShiftedViews) {
  WindowSampler sampler(file(), {0, 5000}, 2, 5, 1);
  const Batch<Host> batch = sampler.next(ctx_);
  const auto in = batch.inputs();
  const auto out = batch.targets();
  ASSERT_EQ(in.shape(), (Extents<2>{2, 5}));
  ASSERT_EQ(out.shape(), (Extents<2>{2, 5}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t) {
      EXPECT_EQ(in(b, t), batch.tokens(b, t));
      EXPECT_EQ(out(b, t), batch.tokens(b, t + 1));
    }
}

TEST_F(DataTest, SequentialWindowsPredictEachTokenOnce) {
  SequentialWindows windows(file(), {10, 33}, 3, 5);  // 23 tokens: (23 - 1) / 5 = 4 windows
  EXPECT_EQ(windows.windows(), 4);
  ASSERT_EQ(windows.batches(), 2);
  const Batch<Host> first = windows.batch(ctx_, 0);
  const Batch<Host> last = windows.batch(ctx_, 1);
  EXPECT_EQ(first.tokens.size(0), 3);
  EXPECT_EQ(last.tokens.size(0), 1);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j <= 5; ++j) EXPECT_EQ(first.tokens(r, j), 10 + 5 * r + j);
  EXPECT_EQ(last.tokens(0, 0), 25);
  EXPECT_EQ(last.tokens(0, 5), 30);
  EXPECT_THROW(windows.batch(ctx_, 2), InvalidArgument);
}

TEST_F(DataTest, RejectsRangesWithoutAWindow) {
  EXPECT_THROW(WindowSampler(file(), {0, 8}, 1, 8, 0), InvalidArgument);  // needs L + 1 = 9 tokens
  EXPECT_THROW(WindowSampler(file(), {0, 6000}, 1, 8, 0), InvalidArgument);
  EXPECT_THROW(SequentialWindows(file(), {0, 100}, 0, 8), InvalidArgument);
}

}  // namespace
}  // namespace bimamba
