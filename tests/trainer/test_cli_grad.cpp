// `bimamba grad` (examples/cli/cmd_grad.cpp) against the fixtures (tests/data/FIXTURES.md): on bimamba2-tiny
// in both checkpoint layouts, --loss distill gives the fixture's distill_loss and every grad.* tensor, and
// --loss ce gives ce_loss.
#include <test_support.hpp>

#include <bimamba/io/safetensors.hpp>
#include <cstdlib>
#include <string>

#include "../train/temp_path.hpp"

namespace bimamba::test {
namespace {

// FIXTURES.md: a correct float32 implementation meets relative L2 < 1e-4 on every gradient tensor.
constexpr double kGradTol = 1e-4;
// The losses are means of float logits that match the float64 ones to < 1e-5 relative L2.
constexpr double kLossTol = 1e-5;

SafetensorsFile run_grad(const std::string& folder, const std::string& loss) {
  const std::string out = temp_path(loss + ".safetensors");
  const std::string command = bimamba::test::cli_binary() + " grad --model '" + data_path(folder) + "' --input '" +
                              data_path(folder + "/reference.safetensors") + "' --output '" + out + "' --loss " + loss;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return SafetensorsFile(out);
}

void check_fixture(const std::string& folder) {
  const SafetensorsFile ref(data_path(folder + "/reference.safetensors"));
  const SafetensorsFile got = run_grad(folder, "distill");
  const double loss = to_float(got.get("loss"))[0], expected = to_float(ref.get("distill_loss"))[0];
  EXPECT_NEAR(loss, expected, kLossTol * expected) << folder;
  int grads = 0;
  for (const std::string& name : ref.names()) {
    if (name.rfind("grad.", 0) != 0) continue;
    ++grads;
    ASSERT_TRUE(got.has(name)) << folder << ": bimamba grad wrote no " << name;
    EXPECT_LT(relative_l2(to_float(got.get(name)), to_float(ref.get(name))), kGradTol) << folder << ": " << name;
  }
  int written = 0;
  for (const std::string& name : got.names()) written += name.rfind("grad.", 0) == 0;
  EXPECT_EQ(written, grads) << folder << ": one grad.* per fixture gradient, no more";
  EXPECT_GT(grads, 0);

  const SafetensorsFile ce = run_grad(folder, "ce");
  const double ce_loss = to_float(ce.get("loss"))[0], ce_expected = to_float(ref.get("ce_loss"))[0];
  EXPECT_NEAR(ce_loss, ce_expected, kLossTol * ce_expected) << folder;
}

TEST(CliGrad, BiMamba2TinyMatchesFixture) { check_fixture("bimamba2-tiny"); }
TEST(CliGrad, BiMamba2TinyMambaSsmMatchesFixture) { check_fixture("bimamba2-tiny-mamba-ssm"); }

}  // namespace
}  // namespace bimamba::test
