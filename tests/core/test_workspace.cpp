// Workspace arena: alignment, mark/release, chaining without moving earlier memory, merge on reset.
#include <bimamba/core/context.hpp>
#include <gtest/gtest.h>

#include <cstdint>

namespace bimamba {
namespace {

TEST(Workspace, AlignedAndReleasable) {
  Workspace<Host> ws;
  auto start = ws.mark();
  float* a = ws.take<float>(3);
  double* b = ws.take<double>(5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % kAlignment, 0u);
  EXPECT_NE(static_cast<void*>(a), static_cast<void*>(b));
  ws.release(start);
  EXPECT_EQ(ws.take<float>(3), a);  // released space is handed out again
}

TEST(Workspace, ChainsBlocksThenMergesOnReset) {
  Workspace<Host> ws;
  char* first = ws.take<char>(1 << 20);
  first[0] = 7;
  char* second = ws.take<char>(3 << 20);  // does not fit the first block: a new block, the first untouched
  second[0] = 9;
  EXPECT_EQ(first[0], 7);
  EXPECT_GE(ws.capacity(), size_t(4) << 20);
  const size_t peak = ws.peak_bytes();
  ws.reset();
  EXPECT_EQ(ws.capacity(), peak);  // one block of the peak size
  ws.take<char>(1 << 20);
  ws.take<char>(3 << 20);
  EXPECT_EQ(ws.capacity(), peak);  // the same sequence needs no new memory
}

// The decode step's pattern: the chained block is taken and released inside a scope, so at reset() only the
// first block is left; reset() must still grow to the peak, or the next step allocates again (inside a CUDA
// graph capture that is an error).
TEST(Workspace, ResetGrowsToThePeakOfReleasedScopes) {
  Workspace<Host> ws;
  auto step = [&] {
    WorkspaceScope<Host> scope(ws);
    ws.take<char>(1 << 20);
    ws.take<char>(3 << 20);  // chains a second block, freed again when the scope ends
  };
  step();
  ASSERT_LT(ws.capacity(), ws.peak_bytes());  // the pattern reproduced: the chain is gone, the peak remembered
  ws.reset();
  const size_t after_reset = ws.capacity();
  EXPECT_GE(after_reset, ws.peak_bytes());
  step();
  EXPECT_EQ(ws.capacity(), after_reset);  // the same step fits the one block: no new memory
}

TEST(Context, ParallelForCoversRangeOnce) {
  Context<Host> ctx(4);
  std::vector<int> hits(1000, 0);
  ctx.parallel_for(int64_t(hits.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) ++hits[size_t(i)];
  });
  for (int h : hits) EXPECT_EQ(h, 1);
}

TEST(Context, LoggerReceivesMessagesOnlyWhenSet) {
  Context<Host> ctx(1);
  ctx.log(LogLevel::Info, "nobody listens");  // must not print or crash
  std::string seen;
  ctx.set_logger([&](LogLevel, std::string_view m) { seen = std::string(m); });
  ctx.log(LogLevel::Warning, "hello");
  EXPECT_EQ(seen, "hello");
}

TEST(Errors, CheckNamesConditionAndMessage) {
  try {
    BIMAMBA_CHECK(1 + 1 == 3, "arithmetic is off by ", 1);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("arithmetic is off by 1"), std::string::npos) << what;
    EXPECT_NE(what.find("1 + 1 == 3"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace bimamba
