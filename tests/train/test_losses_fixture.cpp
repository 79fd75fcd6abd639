// Training losses against the PyTorch fixture (tests/data/bimamba2-tiny/reference.safetensors):
// `distill_loss` from `logits` and `teacher_logits`, `ce_loss` from `logits` and `input_ids`.
#include <gtest/gtest.h>

#include <bimamba/io/safetensors.hpp>
#include <bimamba/train/losses.hpp>

#include "test_support.hpp"

namespace bimamba {
namespace {

// The fixture's losses are float64 results stored as F32 and computed from float64 logits stored as F32:
// both roundings are 6e-8 relative, and our float exponentials add a few 1e-7; 2e-6 is ample and would
// still catch a wrong normalisation (1/(B L) vs 1/(B (L-1))) or a missing max shift.
constexpr double kLossTol = 2e-6;

struct Fixture {
  SafetensorsFile file{test::data_path("bimamba2-tiny/reference.safetensors")};
  Tensor<float, 3, Host> logits = to_tensor<3>(file.get("logits"));           // (B, L, V)
  Tensor<float, 3, Host> teacher = to_tensor<3>(file.get("teacher_logits"));  // (B, L, V)
  double expected(const char* name) const { return double(to_float(file.get(name)).at(0)); }
};

TEST(LossesFixture, DistillLossMatchesPyTorch) {
  Context<Host> ctx;
  Fixture f;
  Tensor<float, 3, Host> dlogits(f.logits.shape());
  const double loss = distill_loss(ctx, f.logits, f.teacher, dlogits);
  EXPECT_NEAR(loss, f.expected("distill_loss"), kLossTol * f.expected("distill_loss"));
}

TEST(LossesFixture, CrossEntropyLossMatchesPyTorch) {
  Context<Host> ctx;
  Fixture f;
  const HostTensor ids = f.file.get("input_ids");
  auto tokens = tensor_from<int32_t, 2>(to_int32(ids), {ids.shape[0], ids.shape[1]});  // (B, L)
  const double loss = next_token_loss(ctx, f.logits, tokens, {});
  EXPECT_NEAR(loss, f.expected("ce_loss"), kLossTol * f.expected("ce_loss"));
}

}  // namespace
}  // namespace bimamba
