// `--device cuda` of the inference commands, end to end through the built binary: logits (prefill and step)
// and greedy generation reproduce every model fixture on the GPU as on the host, perplexity equals the host's,
// and bench decode / bench gemv report on the device. Where no GPU can be used (a build without CUDA, or no
// device), every command must fail with the one-line "--device cuda" error and write nothing; the test then
// checks exactly that and skips the rest.
#include <bimamba/io/safetensors.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <test_support.hpp>

#include "cli_runner.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;
using test::bimamba;
using test::quote;
using test::Result;
using test::temp_path;

const char* const kModelFixtures[] = {"mamba2-tiny", "bimamba2-tiny", "bimamba2-tiny-mamba-ssm", "mamba1-tiny"};

// True when the command failed because no GPU can be used (after checking that failure's contract).
bool no_gpu(const Result& r, const std::string& command) {
  if (r.code == 0 || r.err.find("--device cuda") == std::string::npos) return false;
  test::expect_one_line_error(r, command, "--device cuda");
  return true;
}

TEST(CliCuda, LogitsMatchEveryFixtureInBothModes) {
  for (const char* fixture : kModelFixtures) {
    for (const std::string extra : {"", "--packed"}) {
      if (!extra.empty() && std::string(fixture).find("bimamba") == std::string::npos) continue;
      const std::string ref = test::data_path(std::string(fixture) + "/reference.safetensors");
      for (const std::string mode : {"prefill", "step"}) {
        const std::string out = temp_path("cuda_logits.safetensors");
        fs::remove(out);
        const Result r = bimamba("logits --device cuda --model " + quote(test::data_path(fixture)) + " --input " +
                                 quote(ref) + " --output " + quote(out) + " --mode " + mode + " " + extra);
        if (no_gpu(r, "logits")) {
          EXPECT_FALSE(fs::exists(out));
          GTEST_SKIP() << "no usable CUDA device";
        }
        ASSERT_EQ(r.code, 0) << r.err;
        const HostTensor got = SafetensorsFile(out).get("logits"), want = SafetensorsFile(ref).get("logits");
        ASSERT_EQ(got.shape, want.shape);
        // Issue 6: the device models reproduce the fixtures as the host ones do (fp32: 1e-5 relative L2 of the
        // float64 reference).
        EXPECT_LT(test::relative_l2(to_float(got), to_float(want)), 1e-5) << fixture << " " << mode << " " << extra;
        fs::remove(out);
      }
    }
  }
}

TEST(CliCuda, GreedyGenerateReproducesGenIds) {
  for (const char* fixture : kModelFixtures) {
    const SafetensorsFile ref(test::data_path(std::string(fixture) + "/reference.safetensors"));
    const std::vector<int64_t> prompt = to_int64(ref.get("gen_prompt_ids")), want = to_int64(ref.get("gen_ids"));
    std::string ids;
    for (int64_t id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    const Result r = bimamba("generate --device cuda --model " + quote(test::data_path(fixture)) + " --prompt-ids " +
                             ids + " --max-new-tokens " + std::to_string(want.size()) + " --greedy --json --pad-token 0");
    if (no_gpu(r, "generate")) GTEST_SKIP() << "no usable CUDA device";
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["ids"].get<std::vector<int64_t>>(), want) << fixture;
  }
}

// A random Bi-Mamba of the 780M preset's layout, shrunk (D 64, 2 layers; the GPT-NeoX vocabulary), as an HF
// directory and packed.
struct TinyBiMamba {
  std::string dir = temp_path("cuda_tiny_bimamba"), packed = temp_path("cuda_tiny_bimamba.packed.safetensors");
  TinyBiMamba() {
    const std::string shape = " --preset bimamba-780m --d-model 64 --n-layer 2 --seed 5 --vocab 50304 --json";
    EXPECT_EQ(bimamba("init" + shape + " --out " + quote(dir)).code, 0);
    EXPECT_EQ(bimamba("init" + shape + " --packed --out " + quote(packed)).code, 0);
  }
  ~TinyBiMamba() {
    fs::remove_all(dir);
    fs::remove(packed);
  }
};

TEST(CliCuda, PerplexityEqualsTheHost) {
  const TinyBiMamba model;
  const std::string text = temp_path("cuda_text.txt");
  {
    std::ofstream out(text);
    for (int i = 0; i < 30; ++i) out << "A" << i << " b c d e f g h i j k l m n o p q r s t u v w x y z.\n";
  }
  const std::string tok = test::data_path("tokenizers/gpt-neox-20b.json");
  for (const std::string& m : {model.dir, model.packed}) {
    const std::string common = "perplexity --model " + quote(m) + " --tokenizer " + quote(tok) + " --text " +
                               quote(text) + " --window 64 --max-tokens 511 --json";
    const Result host = bimamba(common), device = bimamba(common + " --device cuda");
    ASSERT_EQ(host.code, 0) << host.err;
    if (no_gpu(device, "perplexity")) GTEST_SKIP() << "no usable CUDA device";
    ASSERT_EQ(device.code, 0) << device.err;
    const auto h = nlohmann::json::parse(host.out), d = nlohmann::json::parse(device.out);
    EXPECT_EQ(d["windows"], h["windows"]);
    // The logits agree to ~1e-6 relative (fp32 sums in different orders); exp(mean NLL) then to ~1e-5.
    EXPECT_NEAR(d["ppl"].get<double>() / h["ppl"].get<double>(), 1.0, 1e-4) << m;
  }
  fs::remove(text);
}

TEST(CliCuda, BenchDecodeAndGemvReportOnTheDevice) {
  const TinyBiMamba model;
  Result r = bimamba("bench decode --device cuda --model " + quote(model.packed) +
                     " --batch 3 --prompt-tokens 17 --new-tokens 5 --json");
  if (no_gpu(r, "bench")) GTEST_SKIP() << "no usable CUDA device";
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["device"], "cuda");
  EXPECT_TRUE(j["cuda_graph"].get<bool>());
  EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["hbm_gbps"].get<double>(), 0);
  EXPECT_GT(j["fraction_of_limit"].get<double>(), 0);
  EXPECT_LE(j["fraction_of_limit"].get<double>(), 1.0);  // no run can beat the bytes / bandwidth limit

  // One sequence: through the persistent kernel by default (FastPath::persistent), three launches a block with
  // --per-block.
  for (const bool per_block : {false, true}) {
    r = bimamba("bench decode --device cuda --model " + quote(model.packed) +
                " --batch 1 --prompt-tokens 9 --new-tokens 4 --json" + (per_block ? " --per-block" : ""));
    ASSERT_EQ(r.code, 0) << r.err;
    j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["fast_path"]["persistent"].get<bool>(), !per_block);
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  }

  r = bimamba("bench gemv --device cuda --rows 301 --cols 203 --reps 3 --json");  // odd shape: partial words
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_LT(j["relative_l2_vs_host"].get<double>(), 1e-5);
  EXPECT_LT(j["cublas_relative_l2"].get<double>(), 1e-2);
  EXPECT_GT(j["packed_us"].get<double>(), 0);
  EXPECT_GT(j["cublas_bf16_us"].get<double>(), 0);
  EXPECT_NEAR(j["speedup_over_cublas_bf16"].get<double>(),
              j["cublas_bf16_us"].get<double>() / j["packed_us"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace bimamba
