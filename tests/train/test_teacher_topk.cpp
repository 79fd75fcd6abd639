// Top-k teachers (train/teacher_topk.hpp): top_k against a full sort, the teacher file round trip, the
// loss from a file equal to the loss from the teacher's logits when K = V, and damaged files.
#include <gtest/gtest.h>

#include <bimamba/train/teacher_topk.hpp>
#include <filesystem>

#include "temp_path.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kB = 2, kL = 4, kV = 37;

Tensor<float, 3, Host> random_logits(uint64_t seed) {
  return tensor_from<float, 3>(test::random_floats(size_t(kB * kL * kV), seed, -5, 5), {kB, kL, kV});
}

Tensor<int32_t, 2, Host> random_tokens(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(size_t(kB * (kL + 1)));
  for (auto& x : t) x = int32_t(rng() % kV);
  return tensor_from<int32_t, 2>(t, {kB, kL + 1});
}

TEST(TopK, MatchesFullSortWithTiesBySmallerId) {
  Context<Host> ctx(2);
  auto logits = random_logits(1);
  logits(1, 2, 30) = logits(1, 2, 3) = 9.0f;  // a tie at the top: id 3 comes first
  constexpr int64_t kK = 6;
  Tensor<int32_t, 3, Host> ids({kB, kL, kK});
  Tensor<float, 3, Host> values({kB, kL, kK});
  top_k(ctx, logits, ids, values);
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t t = 0; t < kL; ++t) {
      std::vector<int32_t> order(kV);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t i, int32_t j) { return logits(b, t, i) > logits(b, t, j); });
      for (int64_t k = 0; k < kK; ++k) {
        EXPECT_EQ(ids(b, t, k), order[size_t(k)]) << b << " " << t << " " << k;
        EXPECT_EQ(values(b, t, k), logits(b, t, order[size_t(k)]));
      }
    }
  EXPECT_EQ(ids(1, 2, 0), 3);
  EXPECT_EQ(ids(1, 2, 1), 30);
  Tensor<int32_t, 3, Host> too_many({kB, kL, kV + 1});
  Tensor<float, 3, Host> too_many_values({kB, kL, kV + 1});
  EXPECT_THROW(top_k(ctx, logits, too_many, too_many_values), InvalidArgument);
}

TEST(TeacherTopKFile, RoundTripAndLossFromFile) {
  Context<Host> ctx;
  const std::string path = test::temp_path("teacher.safetensors");
  constexpr int64_t kK = 5;
  TeacherTopKWriter writer(path, kV, kK);
  std::vector<Tensor<float, 3, Host>> teachers;
  for (int s = 0; s < 3; ++s) {
    teachers.push_back(random_logits(10 + uint64_t(s)));
    writer.add(ctx, random_tokens(20 + uint64_t(s)), teachers.back());
  }
  writer.finish();

  const TeacherTopKFile file(path);
  EXPECT_EQ(file.steps(), 3);
  EXPECT_EQ(file.batch_size(), kB);
  EXPECT_EQ(file.length(), kL);
  EXPECT_EQ(file.k(), kK);
  EXPECT_EQ(file.vocab_size(), kV);
  const auto student = random_logits(99);
  for (int s = 0; s < 3; ++s) {
    const TeacherTopKStep<Host> step = file.step(ctx, s);
    const auto tokens = random_tokens(20 + uint64_t(s));
    EXPECT_EQ(0, std::memcmp(step.batch.tokens.data(), tokens.data(), tokens.bytes())) << s;
    Tensor<int32_t, 3, Host> ids({kB, kL, kK});
    Tensor<float, 3, Host> values({kB, kL, kK});
    top_k(ctx, teachers[size_t(s)], ids, values);
    EXPECT_EQ(distill_loss(ctx, student, step.teacher(), {}),
              distill_loss(ctx, student, TopKTeacher<Host>{ids, values}, {}));
  }
  EXPECT_THROW(file.step(ctx, 3), InvalidArgument);
  fs::remove(path);
}

TEST(TeacherTopKFile, FullTopKEqualsDenseTeacher) {
  Context<Host> ctx;
  const std::string path = test::temp_path("full.safetensors");
  const auto teacher = random_logits(3);
  TeacherTopKWriter writer(path, kV, kV);
  writer.add(ctx, random_tokens(4), teacher);
  writer.finish();
  const auto step = TeacherTopKFile(path).step(ctx, 0);
  const auto student = random_logits(5);
  const double dense = distill_loss(ctx, student, teacher, {});
  // The same terms summed in another order (sorted by teacher logit) in float then double: ~1e-7 relative.
  EXPECT_NEAR(distill_loss(ctx, student, step.teacher(), {}), dense, 1e-6 * dense);
  fs::remove(path);
}

TEST(TeacherTopKFile, DamagedFilesNameTheProblem) {
  const std::string path = test::temp_path("bad.safetensors");
  auto expect_error = [&](const std::string& needle) {
    try {
      TeacherTopKFile file(path);
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const FormatError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  const std::map<std::string, std::string> meta = {
      {"format", kTeacherTopKFormat}, {"version", "1"}, {"vocab_size", "10"}};
  const auto tokens = HostTensor::from_values<int32_t>("tokens", {1, 1, 3}, {1, 2, 3});
  const auto logits = HostTensor::from_values<float>("topk_logits", {1, 1, 2, 1}, {0.5f, 0.25f});

  save_safetensors(path, {tokens}, {});
  expect_error("not a teacher top-k file");
  save_safetensors(path, {tokens, logits}, meta);
  expect_error("no tensor 'topk_ids'");
  save_safetensors(path, {tokens, HostTensor::from_values<int32_t>("topk_ids", {1, 1, 2, 1}, {4, 10}), logits}, meta);
  expect_error("topk_ids element 1 = 10 is outside [0, 10)");
  save_safetensors(path, {tokens, HostTensor::from_values<int32_t>("topk_ids", {1, 1, 3, 1}, {4, 5, 6}), logits}, meta);
  expect_error("expected (S, B, L, K) with tokens (S, B, L + 1)");
  save_safetensors(path, {tokens, HostTensor::from_values<int64_t>("topk_ids", {1, 1, 2, 1}, {4, 5}), logits}, meta);
  expect_error("tensor 'topk_ids' is I64, expected I32");
  fs::remove(path);
}

}  // namespace
}  // namespace bimamba
