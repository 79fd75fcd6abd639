// Config readers: the HF and mamba_ssm fixtures of the same Bi-Mamba model give the same ModelConfig, the
// Mamba-1 fixture reads, Python's non-finite JSON literals are accepted, and the official Bi-Mamba / mamba_ssm
// conventions (vocab padding, dt_rank "auto", module defaults) are applied.
#include <bimamba/model/config_io.hpp>

#include <cmath>
#include <limits>

#include "io_test_support.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

TEST(Json, AcceptsPythonNonFiniteLiteralsOutsideStrings) {
  const nlohmann::json j =
      parse_json(R"({"a": [0.0, Infinity, -Infinity, NaN], "s": "NaN and Infinity stay text", "k\"Infinity": 1})", "test");
  EXPECT_EQ(j["a"][0].get<double>(), 0.0);
  EXPECT_EQ(j["a"][1].get<double>(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(j["a"][2].get<double>(), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(j["a"][3].get<double>()));
  EXPECT_EQ(j["s"], "NaN and Infinity stay text");
  EXPECT_EQ(j["k\"Infinity"], 1);
  test::expect_format_error([] { parse_json("{\"a\": Infinit}", "cfg.json"); }, {"cfg.json", "invalid JSON"});
}

TEST(ConfigIo, ReadsHfMamba2Fixture) {
  const ModelConfig c = read_config(test::data_path("bimamba2-tiny"));
  EXPECT_EQ(c.architecture, Architecture::Mamba2);
  EXPECT_FALSE(c.binary);  // set by the model loader from the checkpoint
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.vocab_size, 96);
  EXPECT_EQ(c.d_state, 8);
  EXPECT_EQ(c.headdim, 8);
  EXPECT_EQ(c.nheads(), 8);
  EXPECT_EQ(c.ngroups, 1);
  EXPECT_EQ(c.d_conv, 4);
  EXPECT_EQ(c.chunk_size, 8);
  EXPECT_EQ(c.expand, 2);
  EXPECT_TRUE(c.conv_bias);
  EXPECT_FALSE(c.proj_bias);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_TRUE(c.residual_in_fp32);
  EXPECT_FALSE(c.norm_before_gate);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.dt_limit_min, 0.0);
  EXPECT_EQ(c.dt_limit_max, std::numeric_limits<double>::infinity());  // the file says Infinity
}

TEST(ConfigIo, BothBimambaLayoutsGiveTheSameConfig) {
  const ModelConfig hf = read_config(test::data_path("bimamba2-tiny/config.json"));
  const ModelConfig ssm = read_config(test::data_path("bimamba2-tiny-mamba-ssm"));
  EXPECT_EQ(ssm.architecture, hf.architecture);
  EXPECT_EQ(ssm.d_model, hf.d_model);
  EXPECT_EQ(ssm.n_layer, hf.n_layer);
  EXPECT_EQ(ssm.vocab_size, hf.vocab_size);
  EXPECT_EQ(ssm.d_state, hf.d_state);
  EXPECT_EQ(ssm.d_conv, hf.d_conv);
  EXPECT_EQ(ssm.expand, hf.expand);
  EXPECT_EQ(ssm.headdim, hf.headdim);
  EXPECT_EQ(ssm.ngroups, hf.ngroups);
  EXPECT_EQ(ssm.chunk_size, hf.chunk_size);
  EXPECT_EQ(ssm.conv_bias, hf.conv_bias);
  EXPECT_EQ(ssm.proj_bias, hf.proj_bias);
  EXPECT_EQ(ssm.tie_embeddings, hf.tie_embeddings);
  EXPECT_EQ(ssm.norm_eps, hf.norm_eps);
  EXPECT_EQ(ssm.dt_limit_max, hf.dt_limit_max);
  EXPECT_EQ(ssm.in_proj_rows(), 152);  // 2*64 + 2*1*8 + 8, the in_proj.weight rows of the fixture
}

TEST(ConfigIo, ReadsHfMamba1Fixture) {
  const ModelConfig c = read_config(test::data_path("mamba1-tiny"));
  EXPECT_EQ(c.architecture, Architecture::Mamba1);
  EXPECT_EQ(c.d_model, 24);
  EXPECT_EQ(c.d_inner(), 48);
  EXPECT_EQ(c.dt_rank, 3);
  EXPECT_EQ(c.d_state, 6);
  EXPECT_EQ(c.vocab_size, 80);
}

TEST(ConfigIo, OfficialBimambaConfigUsesMambaSsmDefaults) {
  test::TempDir dir;
  // The official Bi-Mamba 780M config (mamba_config/bimamba2_780M.json of the Bi-Mamba repository).
  test::write_bytes(dir.file("config.json"), R"({"d_model": 1536, "d_intermediate": 0, "n_layer": 48,
      "vocab_size": 32000, "ssm_cfg": {"layer": "Mamba2"}, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": true,
      "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 16, "tie_embeddings": true})");
  const ModelConfig c = read_config(dir.path());
  EXPECT_EQ(c.architecture, Architecture::Mamba2);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.d_state, 128);
  EXPECT_EQ(c.headdim, 64);
  EXPECT_EQ(c.nheads(), 48);
  EXPECT_EQ(c.chunk_size, 256);
  EXPECT_EQ(c.dt_limit_max, std::numeric_limits<double>::infinity());
}

TEST(ConfigIo, PadsVocabAndResolvesAutoDtRank) {
  test::TempDir dir;
  test::write_bytes(dir.file("m2.json"), R"({"d_model": 2560, "n_layer": 64, "vocab_size": 50277,
      "ssm_cfg": {"layer": "Mamba2"}, "pad_vocab_size_multiple": 16})");
  EXPECT_EQ(read_config(dir.file("m2.json")).vocab_size, 50288);  // 50277 rounded up to a multiple of 16
  test::write_bytes(dir.file("m1.json"), R"({"d_model": 2560, "n_layer": 64, "vocab_size": 50277, "ssm_cfg": {}})");
  const ModelConfig m1 = read_config(dir.file("m1.json"));
  EXPECT_EQ(m1.architecture, Architecture::Mamba1);  // mamba_ssm's default layer
  EXPECT_EQ(m1.vocab_size, 50280);                   // default pad_vocab_size_multiple 8
  EXPECT_EQ(m1.dt_rank, 160);                        // "auto" = ceil(2560 / 16)
  EXPECT_EQ(m1.d_state, 16);
}

TEST(ConfigIo, RefusesWhatItCannotRepresent) {
  test::TempDir dir;
  test::write_bytes(dir.file("mlp.json"), R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "d_intermediate": 128})");
  test::expect_format_error([&] { read_config(dir.file("mlp.json")); }, {dir.file("mlp.json"), "d_intermediate"});
  test::write_bytes(dir.file("key.json"),
                    R"({"d_model": 64, "n_layer": 2, "vocab_size": 10, "ssm_cfg": {"layer": "Mamba2", "mystery": 1}})");
  test::expect_format_error([&] { read_config(dir.file("key.json")); }, {dir.file("key.json"), "'mystery'"});
  test::write_bytes(dir.file("type.json"), R"({"model_type": "llama", "hidden_size": 8})");
  test::expect_format_error([&] { read_config(dir.file("type.json")); }, {dir.file("type.json"), "'llama'"});
  test::write_bytes(dir.file("heads.json"), R"({"d_model": 64, "n_layer": 2, "vocab_size": 10,
      "ssm_cfg": {"layer": "Mamba2", "headdim": 48}})");
  test::expect_format_error([&] { read_config(dir.file("heads.json")); }, {dir.file("heads.json"), "headdim"});
}

}  // namespace
}  // namespace bimamba
