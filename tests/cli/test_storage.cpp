// Presets and storage accounting: the preset shapes, the tensor list against the fixture checkpoints, and
// the packed size of Bi-Mamba-2.7B derived by hand in docs/storage.md.
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/presets.hpp>
#include <bimamba/model/storage.hpp>

#include <gtest/gtest.h>

#include <test_support.hpp>

namespace bimamba {
namespace {

TEST(Presets, OfficialShapes) {
  const ModelConfig c = model_preset("bimamba-2.7b");
  EXPECT_TRUE(c.binary);
  EXPECT_EQ(c.d_model, 2560);
  EXPECT_EQ(c.n_layer, 64);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.nheads(), 80);
  EXPECT_EQ(c.in_proj_rows(), 10576);  // 2 * 5120 + 2 * 128 + 80
  EXPECT_EQ(model_preset("bimamba-2.7b", 50288).vocab_size, 50288);
  const ModelConfig m = model_preset("mamba2-130m");
  EXPECT_FALSE(m.binary);
  EXPECT_EQ(m.d_model, 768);
  EXPECT_EQ(m.n_layer, 24);
  EXPECT_EQ(m.vocab_size, 50288);
  for (const std::string& name : model_preset_names()) EXPECT_NO_THROW(model_preset(name).validate()) << name;
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    model_preset("bimamba-7b");
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bimamba-7b"), std::string::npos) << what;
    EXPECT_NE(what.find("bimamba-780m"), std::string::npos) << what;
    EXPECT_NE(what.find("mamba2-2.7b"), std::string::npos) << what;
  }
}

// The spec list names exactly the tensors of the HF fixture checkpoints, with their shapes.
void expect_specs_match(const std::string& dir, bool binary) {
  const SafetensorsFile f(test::data_path(dir + "/model.safetensors"));
  ModelConfig c;
  c.binary = binary;
  c.d_model = 32, c.n_layer = 2, c.vocab_size = 96, c.d_state = 8, c.headdim = 8, c.chunk_size = 8;
  const auto specs = model_tensor_specs(c);
  ASSERT_EQ(specs.size(), f.size()) << dir;
  for (const TensorSpec& s : specs) {
    ASSERT_TRUE(f.has(s.name)) << dir << ": " << s.name;
    EXPECT_EQ(f.get(s.name).shape, s.shape) << s.name;
  }
}

TEST(Storage, SpecsMatchTheFixtureCheckpoints) {
  expect_specs_match("mamba2-tiny", false);
  expect_specs_match("bimamba2-tiny", true);
}

TEST(Storage, KindsOfNames) {
  EXPECT_EQ(param_kind_of("backbone.layers.3.mixer.in_proj.weight", true), ParamKind::Binary);
  EXPECT_EQ(param_kind_of("backbone.layers.3.mixer.in_proj.weight", false), ParamKind::Other);
  EXPECT_EQ(param_kind_of("backbone.layers.3.mixer.out_proj.signs", true), ParamKind::Binary);
  EXPECT_EQ(param_kind_of("backbone.layers.3.mixer.out_proj.wscale", true), ParamKind::FbiScales);
  EXPECT_EQ(param_kind_of("backbone.embedding.weight", true), ParamKind::Embedding);
  EXPECT_EQ(param_kind_of("lm_head.weight", false), ParamKind::Embedding);
  EXPECT_EQ(param_kind_of("backbone.layers.0.mixer.conv1d.weight", true), ParamKind::Other);
}

TEST(Storage, BiMamba27BPackedIsTheDocumentedSize) {
  // docs/storage.md: 64 layers x (10576 x 2560 + 2560 x 5120) signs = 2,571,632,640 bits = 321,454,080 bytes;
  // embedding 50288 x 2560 BF16 = 257,474,560; FBI scales 64 x 15360 BF16 = 1,966,080; A_log/D/dt_bias
  // 64 x 240 F32 = 61,440; norms + conv 64 x 34560 + 2560 BF16 = 4,428,800. Total 585,384,960 bytes.
  const StorageReport r = packed_storage(model_preset("bimamba-2.7b", 50288));
  EXPECT_EQ(r[ParamKind::Binary].parameters, 2'571'632'640);
  EXPECT_EQ(r[ParamKind::Binary].bytes, 321'454'080);
  EXPECT_EQ(r[ParamKind::Embedding].bytes, 257'474'560);
  EXPECT_EQ(r[ParamKind::FbiScales].bytes, 1'966'080);
  EXPECT_EQ(r[ParamKind::Other].bytes, 61'440 + 4'428'800);
  EXPECT_EQ(r.bytes(), 585'384'960);
  // The claim: 0.545 GiB +- 1%.
  EXPECT_NEAR(StorageReport::gib(r.bytes()), 0.545, 0.01 * 0.545);
}

TEST(Storage, U8WordsPadRowsToBytes) {
  EXPECT_EQ(packed_sign_bytes(3, 33, DType::U32), 3 * 8);
  EXPECT_EQ(packed_sign_bytes(3, 33, DType::U8), 3 * 5);
  EXPECT_EQ(packed_sign_bytes(2, 64, DType::U8), 2 * 8);
}

}  // namespace
}  // namespace bimamba
