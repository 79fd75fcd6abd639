// `bimamba bench decode` and `bimamba bench gemv` run on tiny shapes and print one JSON object with the
// documented keys, all finite and positive (docs/decode.md). Speed is not asserted here (benchmarks, not tests).
#include <test_support.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace bimamba::test {
namespace {

// stdout of `bimamba <args>`; the exit code in *code.
std::string bimamba_cli(const std::string& args, int* code) {
  FILE* pipe = popen((bimamba::test::cli_binary() + " " + args).c_str(), "r");
  std::string out;
  if (!pipe) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

void expect_positive(const nlohmann::json& j, const char* key) {
  ASSERT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  EXPECT_TRUE(j[key].is_number()) << key;
  EXPECT_GT(j[key].get<double>(), 0.0) << key;
}

void check_decode(const std::string& folder, const std::string& extra) {
  int code = -1;
  const std::string out = bimamba_cli("bench decode --model " + data_path(folder) +
                                          " --batch 2 --prompt-tokens 7 --new-tokens 3 --threads 1 --json " + extra,
                                      &code);
  ASSERT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out);
  for (const char* key : {"tokens_per_s", "prefill_tokens_per_s", "peak_rss_bytes", "bytes_per_token",
                          "limit_tokens_per_s", "dram_read_gbps"})
    expect_positive(j, key);
  // bytes_per_token includes the head: V x D bytes in bf16 (packed model, fast path) or fp32 at least.
  EXPECT_GE(j["bytes_per_token"].get<double>(), 96.0 * 32.0 * 2.0);
}

TEST(BenchCli, DecodePackedFastPath) { check_decode("bimamba2-tiny", ""); }
TEST(BenchCli, DecodeExactPath) { check_decode("bimamba2-tiny", "--exact"); }
TEST(BenchCli, DecodeFullPrecision) { check_decode("mamba2-tiny", ""); }

TEST(BenchCli, Gemv) {
  int code = -1;
  const std::string out = bimamba_cli("bench gemv --rows 67 --cols 95 --threads 1 --reps 1 --json", &code);
  ASSERT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out);
  for (const char* key : {"packed_us", "eigen_fp32_us", "packed_gbps", "dram_read_gbps"}) expect_positive(j, key);
  EXPECT_LT(j["relative_l2_vs_fp32"].get<double>(), 1e-2);  // the tiled kernel's ~7e-4, with margin
}

TEST(BenchCli, PerBlockWithoutCudaIsUsageError) {
  int code = -1;
  const std::string out =
      bimamba_cli("bench decode --model " + data_path("bimamba2-tiny") + " --per-block --json 2>&1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--per-block needs --device cuda"), std::string::npos) << out;
}

TEST(BenchCli, UnknownSubcommandIsUsageError) {
  int code = -1;
  bimamba_cli("bench nothing 2>/dev/null", &code);
  EXPECT_EQ(code, 2);
}

}  // namespace
}  // namespace bimamba::test
