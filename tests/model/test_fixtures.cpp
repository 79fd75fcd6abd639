// The model fixtures (HF transformers / mamba_ssm reference logits, tests/data/FIXTURES.md): prefill and
// step logits of every model, Bi-Mamba through the latent and the packed path.
#include <bimamba/model/load.hpp>

#include <sstream>

#include "model_test_util.hpp"

namespace bimamba::test {
namespace {

// FIXTURES.md: a correct float32 implementation matches the float64 reference logits to < 1e-5 relative L2.
constexpr double kTol = 1e-5;

void check_model(const std::string& folder, bool pack) {
  Context<Host> ctx;
  auto model = load_model<Host>(ctx, data_path(folder));
  if (pack) {
    ASSERT_TRUE(model.config().binary);
    model.pack();
    ASSERT_TRUE(model.packed());
  }
  const Fixture f = read_fixture(folder);
  const auto prefill = to_vector(model.forward(ctx, f.ids));
  const double prefill_err = relative_l2(prefill, f.logits);
  EXPECT_LT(prefill_err, kTol) << folder << " prefill";
  const double step_err = relative_l2(step_logits(ctx, model, f.ids), f.logits);
  EXPECT_LT(step_err, kTol) << folder << " step";
  std::ostringstream errors;
  errors << std::scientific << prefill_err << " / " << step_err;
  ::testing::Test::RecordProperty("prefill_step_rel_l2", errors.str());
}

TEST(ModelFixtures, Mamba2Tiny) { check_model("mamba2-tiny", false); }
TEST(ModelFixtures, Mamba1Tiny) { check_model("mamba1-tiny", false); }
TEST(ModelFixtures, BiMamba2TinyLatent) { check_model("bimamba2-tiny", false); }
TEST(ModelFixtures, BiMamba2TinyPacked) { check_model("bimamba2-tiny", true); }
TEST(ModelFixtures, BiMamba2TinyMambaSsmLatent) { check_model("bimamba2-tiny-mamba-ssm", false); }
TEST(ModelFixtures, BiMamba2TinyMambaSsmPacked) { check_model("bimamba2-tiny-mamba-ssm", true); }

}  // namespace
}  // namespace bimamba::test
