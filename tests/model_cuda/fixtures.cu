// The model fixtures on the Cuda backend (tests/data/FIXTURES.md): load_model<Cuda> reproduces the reference
// logits of every model through the prefill and the recurrent step, Bi-Mamba through the latent and the packed
// path, and the device logits equal the host model's.
#include <bimamba/cuda.hpp>
#include <bimamba/model/load.hpp>

#include "../model/model_test_util.hpp"

namespace bimamba::test {
namespace {

// FIXTURES.md: a correct float32 implementation matches the float64 reference logits to < 1e-5 relative L2
// (the Cuda ops differ from the host ops only in summation order, ~1e-6; see tests/ops_cuda).
constexpr double kTol = 1e-5;

void check_model(const std::string& folder, bool pack) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
  Context<Cuda> ctx;
  auto model = load_model<Cuda>(ctx, data_path(folder));
  if (pack) {
    ASSERT_TRUE(model.config().binary);
    model.pack();
    ASSERT_TRUE(model.packed());
  }
  const Fixture f = read_fixture(folder);
  const auto prefill = to_vector(model.forward(ctx, to<Cuda>(f.ids)));
  EXPECT_LT(relative_l2(prefill, f.logits), kTol) << folder << " prefill";
  EXPECT_LT(relative_l2(step_logits(ctx, model, f.ids), f.logits), kTol) << folder << " step";
}

TEST(ModelFixturesCuda, Mamba2Tiny) { check_model("mamba2-tiny", false); }
TEST(ModelFixturesCuda, Mamba1Tiny) { check_model("mamba1-tiny", false); }
TEST(ModelFixturesCuda, BiMamba2TinyLatent) { check_model("bimamba2-tiny", false); }
TEST(ModelFixturesCuda, BiMamba2TinyPacked) { check_model("bimamba2-tiny", true); }
TEST(ModelFixturesCuda, BiMamba2TinyMambaSsmPacked) { check_model("bimamba2-tiny-mamba-ssm", true); }

}  // namespace
}  // namespace bimamba::test
