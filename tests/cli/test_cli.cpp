// The bimamba binary end to end: logits (prefill and step) on every model fixture, the Bi-Mamba fixtures
// also on the packed sign-bit path (--packed and through a converted packed file), greedy generate, tokenize,
// info, init, perplexity, and the bad inputs of issue 3: each fails with a one-line error, a non-zero exit
// code and no output file left behind.
#include <bimamba/io/safetensors.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <test_support.hpp>

#include "cli_runner.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;
using test::bimamba;
using test::expect_one_line_error;
using test::quote;
using test::Result;
using test::slurp;
using test::temp_path;

std::vector<float> floats_of(const std::string& file, const std::string& name) {
  return to_float(SafetensorsFile(file).get(name));
}

const char* const kModelFixtures[] = {"mamba2-tiny", "bimamba2-tiny", "bimamba2-tiny-mamba-ssm", "mamba1-tiny"};

void expect_logits_match(const std::string& model, const std::string& fixture, const std::string& extra) {
  const std::string ref = test::data_path(fixture + "/reference.safetensors");
  for (const std::string mode : {"prefill", "step"}) {
    const std::string out = temp_path("logits.safetensors");
    fs::remove(out);
    const Result r = bimamba("logits --model " + quote(model) + " --input " + quote(ref) + " --output " + quote(out) +
                             " --mode " + mode + " " + extra);
    ASSERT_EQ(r.code, 0) << r.err;
    const HostTensor got = SafetensorsFile(out).get("logits");
    const HostTensor want = SafetensorsFile(ref).get("logits");
    ASSERT_EQ(got.shape, want.shape);
    EXPECT_EQ(got.dtype, DType::F32);
    // Issue 3: float32 implementations reach the float64 reference to 1e-5 relative L2.
    EXPECT_LT(test::relative_l2(to_float(got), to_float(want)), 1e-5) << model << " " << mode << " " << extra;
    fs::remove(out);
  }
}

TEST(Cli, LogitsMatchEveryFixtureInBothModes) {
  for (const char* fixture : kModelFixtures) expect_logits_match(test::data_path(fixture), fixture, "");
}

TEST(Cli, BiMambaLogitsOnThePackedPath) {
  for (const std::string fixture : {"bimamba2-tiny", "bimamba2-tiny-mamba-ssm"}) {
    expect_logits_match(test::data_path(fixture), fixture, "--packed");
    // Through a packed file holding every full-precision tensor in F32 (BF16 would round them).
    const std::string packed = temp_path("packed_f32.safetensors");
    const Result r = bimamba("convert --model " + quote(test::data_path(fixture)) + " --out " + quote(packed) +
                             " --dtype f32 --embedding-dtype f32 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto report = nlohmann::json::parse(r.out);
    EXPECT_EQ(report["zero_binary_weights"], 0);
    EXPECT_EQ(report["after"]["kinds"]["binary"]["bytes"], 2 * (152 * 4 + 32 * 8));
    expect_logits_match(packed, fixture, "");
    fs::remove(packed);
  }
}

// The fixtures' configs have pad_token_id 0 and HF's generate masks prompt positions holding it (the
// bimamba2-tiny prompt has one): --pad-token 0 does the same.
TEST(Cli, GreedyGenerateReproducesGenIds) {
  for (const char* fixture : kModelFixtures) {
    const SafetensorsFile ref(test::data_path(std::string(fixture) + "/reference.safetensors"));
    const std::vector<int64_t> prompt = to_int64(ref.get("gen_prompt_ids")), want = to_int64(ref.get("gen_ids"));
    std::string ids;
    for (int64_t id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    for (const std::string extra : {"", "--packed"}) {
      if (!extra.empty() && std::string(fixture).find("bimamba") == std::string::npos) continue;
      const Result r = bimamba("generate --model " + quote(test::data_path(fixture)) + " --prompt-ids " + ids +
                               " --max-new-tokens " + std::to_string(want.size()) + " --greedy --json --pad-token 0 " + extra);
      ASSERT_EQ(r.code, 0) << r.err;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["prompt_ids"].get<std::vector<int64_t>>(), prompt) << fixture;
      EXPECT_EQ(j["ids"].get<std::vector<int64_t>>(), want) << fixture << " " << extra;
    }
  }
}

TEST(Cli, TokenizeReproducesTheTokenizerFixtures) {
  const std::pair<std::string, std::string> cases[] = {{"gpt-neox-20b.json", "gpt-neox-20b.jsonl"},
                                                       {"llama-2.model", "llama-2.jsonl"}};
  for (const auto& [name, expected] : cases) {
    const std::string jsonl = test::data_path("tokenizers/" + expected);
    const Result r = bimamba("tokenize --tokenizer " + quote(test::data_path("tokenizers/" + name)) + " --jsonl " + quote(jsonl));
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream got(r.out), want(slurp(jsonl));
    std::string g, w;
    int lines = 0;
    while (std::getline(want, w)) {
      ASSERT_TRUE(std::getline(got, g)) << "missing output line " << lines;
      const auto a = nlohmann::json::parse(g), b = nlohmann::json::parse(w);
      EXPECT_EQ(a["text"], b["text"]);
      EXPECT_EQ(a["ids"], b["ids"]) << name << ": " << b["text"];
      ++lines;
    }
    EXPECT_GT(lines, 60);
    EXPECT_FALSE(std::getline(got, g)) << "extra output: " << g;
  }
  const Result r = bimamba("tokenize --tokenizer " + quote(test::data_path("tokenizers/gpt-neox-20b.json")) +
                           " --text 'Hello world!'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], nlohmann::json::parse("[12092, 1533, 2]"));
}

TEST(Cli, InfoCountsKinds) {
  const Result r = bimamba("info " + quote(test::data_path("bimamba2-tiny-mamba-ssm")));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "pytorch");
  EXPECT_EQ(j["kinds"]["binary"]["parameters"], 2 * (152 * 32 + 32 * 64));
  EXPECT_EQ(j["kinds"]["binary"]["bytes"], 4 * 2 * (152 * 32 + 32 * 64));  // latent F32
  EXPECT_EQ(j["kinds"]["fbi_scales"]["parameters"], 2 * 2 * (32 + 64));
  EXPECT_EQ(j["kinds"]["embedding"]["parameters"], 96 * 32);  // the stored tied lm_head is not counted twice
  EXPECT_EQ(j["zero_binary_weights"], 0);
  EXPECT_EQ(j["config"]["binary"], true);
}

// A small random model with the GPT-NeoX vocabulary, scored by `perplexity` on a text written here.
TEST(Cli, InitThenPerplexity) {
  const std::string model = temp_path("tiny_neox");
  fs::remove_all(model);
  Result r = bimamba("init --preset mamba2-130m --d-model 64 --n-layer 1 --seed 3 --out " + quote(model) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(model + "/config.json"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["kinds"]["embedding"]["parameters"], 50288 * 64);

  const std::string text = temp_path("text.txt");
  {
    std::ofstream out(text);
    for (int i = 0; i < 20; ++i) out << "The quick brown fox jumps over the lazy dog number " << i << ".\n";
  }
  const std::string tok = test::data_path("tokenizers/gpt-neox-20b.json");
  r = bimamba("perplexity --model " + quote(model) + " --tokenizer " + quote(tok) + " --text " + quote(text) +
              " --window 32 --rolling --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const std::string jsonl = temp_path("text.jsonl");
  std::ofstream(jsonl) << nlohmann::json({{"text", slurp(text)}}).dump() << "\n";
  const Result t = bimamba("tokenize --tokenizer " + quote(tok) + " --jsonl " + quote(jsonl));
  fs::remove(jsonl);
  const int64_t n = int64_t(nlohmann::json::parse(t.out)["ids"].size());
  EXPECT_EQ(j["windows"], n / 32);
  EXPECT_EQ(j["tokens"], n / 32 * 32);
  // A random model is close to uniform over 50288 tokens: ppl within a factor 2 of V.
  EXPECT_GT(j["ppl"].get<double>(), 50288.0 / 2);
  EXPECT_LT(j["ppl"].get<double>(), 50288.0 * 2);
  EXPECT_EQ(j["rolling"]["tokens"], n);
  fs::remove_all(model);
  fs::remove(text);
}

// --- bad input: clear error, non-zero exit, nothing written -------------------------------------------

TEST(CliBadInput, UnknownPreset) {
  const std::string out = temp_path("never.safetensors");
  fs::remove(out);
  const Result r = bimamba("init --preset bimamba-9b --packed --out " + quote(out));
  expect_one_line_error(r, "init", "known presets: bimamba-780m");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliBadInput, TokenIdOutsideTheVocabulary) {
  const std::string input = temp_path("bad_ids.safetensors"), out = temp_path("never_logits.safetensors");
  fs::remove(out);
  save_safetensors(input, {HostTensor::from_values<int64_t>("input_ids", {1, 3}, {1, 96, 2})});
  const Result r = bimamba("logits --model " + quote(test::data_path("mamba2-tiny")) + " --input " + quote(input) +
                           " --output " + quote(out));
  expect_one_line_error(r, "logits", "input_ids[0, 1] = 96 is outside the model's vocabulary [0, 96)");
  EXPECT_FALSE(fs::exists(out));
  const Result g = bimamba("generate --model " + quote(test::data_path("mamba2-tiny")) + " --prompt-ids 5,100 --json");
  expect_one_line_error(g, "generate", "token id 100");
  EXPECT_TRUE(g.out.empty());
  fs::remove(input);
}

TEST(CliBadInput, TokenizerOfTheWrongKind) {
  const Result r = bimamba("tokenize --tokenizer " + quote(test::data_path("mamba2-tiny/model.safetensors")) + " --text hi");
  expect_one_line_error(r, "tokenize", "model.safetensors");
  EXPECT_TRUE(r.out.empty());
}

TEST(CliBadInput, ModelDirectoryWithMismatchedShapes) {
  const std::string dir = temp_path("mismatched"), out = temp_path("never_logits.safetensors");
  fs::remove_all(dir);
  fs::remove(out);
  fs::create_directories(dir);
  fs::copy_file(test::data_path("mamba2-tiny/model.safetensors"), dir + "/model.safetensors");
  std::string config = slurp(test::data_path("mamba2-tiny/config.json"));
  const std::string from = "\"state_size\": 8", to = "\"state_size\": 16";
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), to);
  std::ofstream(dir + "/config.json") << config;
  const Result r = bimamba("logits --model " + quote(dir) + " --input " +
                           quote(test::data_path("mamba2-tiny/reference.safetensors")) + " --output " + quote(out));
  expect_one_line_error(r, "logits", "shape");
  EXPECT_FALSE(fs::exists(out));
  const std::string packed = temp_path("never_packed.safetensors");
  const Result c = bimamba("convert --model " + quote(dir) + " --out " + quote(packed));
  expect_one_line_error(c, "convert", "in_proj.weight");
  EXPECT_FALSE(fs::exists(packed));
  fs::remove_all(dir);
}

TEST(CliBadInput, EmptyTextFile) {
  const std::string empty = temp_path("empty.txt");
  std::ofstream(empty).close();
  const Result r = bimamba("perplexity --model " + quote(test::data_path("mamba2-tiny")) + " --tokenizer " +
                           quote(test::data_path("tokenizers/gpt-neox-20b.json")) + " --text " + quote(empty) +
                           " --window 8 --json");
  expect_one_line_error(r, "perplexity", "empty");
  EXPECT_TRUE(r.out.empty());
  fs::remove(empty);
}

TEST(CliBadInput, UsageMistakesExitWithCode2) {
  Result r = bimamba("logits --model x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("is required"), std::string::npos) << r.err;
  r = bimamba("frobnicate");
  EXPECT_EQ(r.code, 2);
  r = bimamba("logits --no-such-option 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown option --no-such-option"), std::string::npos) << r.err;
  r = bimamba("train --out " + quote(temp_path("run")) + " --device tpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--device must be host or cuda, got 'tpu'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(temp_path("run")));  // checked before the run directory is made
  r = bimamba("train --out " + quote(temp_path("run")) + " --precision fp16");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("must be fp32, tf32 or bf16, got 'fp16'"), std::string::npos) << r.err;
  r = bimamba("train --out " + quote(temp_path("run")) + " --precision bf16");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--precision bf16 needs --device cuda"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(temp_path("run")));
}

// --recompute drops the mixers' saved activations and recomputes them in the backward: the same gradients, so
// the same model after training, bit for bit.
TEST(Cli, TrainWithRecomputeWritesTheSameModel) {
  const std::string text = temp_path("recompute.txt");
  std::ofstream(text) << "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.\n";
  std::vector<float> weights[2];
  for (int recompute = 0; recompute < 2; ++recompute) {
    const std::string out = temp_path("recompute-run" + std::to_string(recompute));
    fs::remove_all(out);
    const Result r = bimamba("train --text " + quote(text) + " --tokenizer " +
                             quote(test::data_path("tokenizers/gpt-neox-20b.json")) + " --out " + quote(out) +
                             " --d-model 32 --n-layer 2 --d-state 16 --headdim 16 --steps 3 --batch 2 --seq-len 8" +
                             " --eval-every 0 --val-fraction 0.2 --threads 1" + (recompute ? " --recompute" : ""));
    ASSERT_EQ(r.code, 0) << r.err;
    weights[recompute] = floats_of(out + "/model.safetensors", "backbone.layers.1.mixer.in_proj.weight");
    fs::remove_all(out);
  }
  EXPECT_FALSE(weights[0].empty());
  EXPECT_TRUE(weights[0] == weights[1]);
  fs::remove(text);
}

// `bimamba topk` writes the teacher's logits on the batches `distill` would draw; `distill --teacher-topk` with
// K = V (every logit kept) then trains the student as the teacher run in the loop does: the same validation
// perplexity to 1e-4 (the top-k loss sums the K = V terms in another order: ~1e-6 per step, through 3 steps of AdamW).
TEST(Cli, DistillFromATeacherTopKFileEqualsTheOnlineTeacher) {
  const std::string text = temp_path("topk.txt"), teacher = temp_path("topk-teacher"), topk = temp_path("topk.safetensors");
  {
    std::ofstream out(text);
    for (int i = 0; i < 40; ++i) out << "To be, or not to be, that is the question number " << i << ".\n";
  }
  const std::string tok = quote(test::data_path("tokenizers/gpt-neox-20b.json"));
  fs::remove_all(teacher);
  Result r = bimamba("init --preset mamba2-130m --d-model 32 --n-layer 1 --seed 2 --out " + quote(teacher) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string window = " --batch 2 --seq-len 8 --seed 3 --val-fraction 0.2";
  r = bimamba("topk --teacher " + quote(teacher) + " --text " + quote(text) + " --tokenizer " + tok + " --out " +
              quote(topk) + " --batches 3 --k 50288 --threads 1 --json" + window);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["bytes"].get<int64_t>() > 3 * 2 * (9 + 2 * 8 * 50288) * 4, true);  // the tensors, plus the header
  double ppl[2] = {0, 0};
  for (int from_file = 0; from_file < 2; ++from_file) {
    const std::string out = temp_path("topk-student" + std::to_string(from_file));
    fs::remove_all(out);
    r = bimamba("distill --teacher " + quote(teacher) + " --text " + quote(text) + " --tokenizer " + tok + " --out " +
                quote(out) + " --steps 3 --eval-every 0 --eval-batches 2 --threads 1 --json" + window +
                (from_file ? " --teacher-topk " + quote(topk) : std::string()));
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string last = r.out.substr(r.out.rfind('{'));
    ppl[from_file] = nlohmann::json::parse(last)["val_ppl"].get<double>();
    fs::remove_all(out);
  }
  EXPECT_GT(ppl[0], 1.0);
  EXPECT_NEAR(ppl[1] / ppl[0], 1.0, 1e-4);
  r = bimamba("distill --teacher " + quote(teacher) + " --text " + quote(text) + " --tokenizer " + tok + " --out " +
              quote(temp_path("topk-mismatch")) + " --steps 1 --batch 4 --seq-len 8 --teacher-topk " + quote(topk));
  expect_one_line_error(r, "distill", "--batch / --seq-len must match");
  EXPECT_FALSE(fs::exists(temp_path("topk-mismatch")));
  fs::remove_all(teacher);
  fs::remove(topk);
  fs::remove(text);
}

// --device cuda where no GPU can be used (a build without CUDA, or no device / driver): a one-line error before
// anything is written. Where a GPU is usable, the same command trains a step there and writes the model.
TEST(Cli, TrainOnCudaNeedsAGpuOrTrains) {
  const std::string text = temp_path("train.txt"), out = temp_path("cuda-run");
  std::ofstream(text) << "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.\n";
  const Result r = bimamba("train --text " + quote(text) + " --tokenizer " +
                           quote(test::data_path("tokenizers/gpt-neox-20b.json")) + " --out " + quote(out) +
                           " --d-model 32 --n-layer 1 --d-state 16 --headdim 16 --steps 1 --batch 1 --seq-len 8" +
                           " --eval-every 0 --val-fraction 0.2 --device cuda");
  if (r.code == 0) {
    EXPECT_TRUE(fs::exists(out + "/model.safetensors")) << r.err;
  } else {
    expect_one_line_error(r, "train", "--device cuda");
    EXPECT_FALSE(fs::exists(out));
  }
  fs::remove_all(out);
  fs::remove(text);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const std::string c : {"logits", "generate", "perplexity", "tokenize", "convert", "info", "init", "topk"}) {
    const Result r = bimamba(c + " --help");
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_EQ(r.out.rfind("usage: bimamba " + c, 0), 0u) << r.out;
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
}

// Issue 3: `init --preset bimamba-2.7b --vocab 50288 --packed` then `info`: 0.545 GiB +- 1%, and the file on
// disk that size. Writes ~0.55 GB.
TEST(Cli, SlowBiMamba27BPackedIsHalfAGigabyte) {
  const std::string out = temp_path("bimamba-2.7b.packed.safetensors");
  Result r = bimamba("init --preset bimamba-2.7b --vocab 50288 --packed --out " + quote(out));
  ASSERT_EQ(r.code, 0) << r.err;
  r = bimamba("info " + quote(out));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["gib"].get<double>(), 0.545, 0.01 * 0.545);
  EXPECT_NEAR(j["file_gib"].get<double>(), 0.545, 0.01 * 0.545);
  EXPECT_EQ(j["file_bytes"].get<int64_t>(), int64_t(fs::file_size(out)));
  EXPECT_EQ(j["bytes"], 585'384'960);  // docs/storage.md
  EXPECT_EQ(j["parameters"].get<int64_t>(), j["kinds"]["binary"]["parameters"].get<int64_t>() +
                                                 j["kinds"]["fbi_scales"]["parameters"].get<int64_t>() +
                                                 j["kinds"]["embedding"]["parameters"].get<int64_t>() +
                                                 j["kinds"]["other"]["parameters"].get<int64_t>());
  std::printf("bimamba-2.7b packed: %s\n", r.out.c_str());
  fs::remove(out);
}

}  // namespace
}  // namespace bimamba
