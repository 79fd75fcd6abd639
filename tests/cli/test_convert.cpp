// Conversion: full-precision Mamba-2 -> latent Bi-Mamba (alpha / beta from the latent weights, checked
// against a direct double computation here), and -> packed with a report by kind.
#include <bimamba/io/safetensors.hpp>
#include <bimamba/model/convert.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <test_support.hpp>

namespace bimamba {
namespace {

ModelConfig tiny_fp_config() {
  ModelConfig c;
  c.d_model = 32, c.n_layer = 2, c.vocab_size = 96, c.d_state = 8, c.headdim = 8, c.chunk_size = 8;
  return c;
}

TEST(Convert, FpToBiMambaInitialisesAlphaBetaFromTheLatentWeights) {
  const SafetensorsFile f(test::data_path("mamba2-tiny/model.safetensors"));
  ModelConfig c = tiny_fp_config();
  ConversionReport report;
  const auto out = fp_to_bimamba(c, [&](const std::string& n) { return f.get(n); }, &report);
  EXPECT_TRUE(c.binary);
  const auto specs = model_tensor_specs(c);
  ASSERT_EQ(out.size(), specs.size());
  for (size_t k = 0; k < specs.size(); ++k) {
    ASSERT_EQ(out[k].name, specs[k].name);
    ASSERT_EQ(out[k].shape, specs[k].shape);
  }
  auto find = [&](const std::string& name) {
    for (const HostTensor& t : out)
      if (t.name == name) return to_float(t);
    ADD_FAILURE() << name;
    return std::vector<float>{};
  };
  for (const std::string proj : {"backbone.layers.0.mixer.in_proj", "backbone.layers.1.mixer.out_proj"}) {
    const HostTensor w = f.get(proj + ".weight");
    const std::vector<float> W = to_float(w);
    EXPECT_EQ(find(proj + ".weight"), W);  // the latent weight is kept
    const std::vector<float> alpha = find(proj + ".wscale"), beta = find(proj + ".wbias");
    const int64_t rows = w.shape[0], cols = w.shape[1];
    for (int64_t j = 0; j < cols; ++j) {
      double mean = 0, dev = 0;
      for (int64_t i = 0; i < rows; ++i) mean += W[size_t(i * cols + j)];
      mean /= rows;
      for (int64_t i = 0; i < rows; ++i) dev += std::fabs(W[size_t(i * cols + j)] - mean);
      // Both computed in double and rounded to float once: equal up to one float rounding.
      EXPECT_NEAR(beta[size_t(j)], mean, 1e-7 * std::fabs(mean) + 1e-12) << proj << " column " << j;
      EXPECT_NEAR(alpha[size_t(j)], dev / rows, 1e-7 * dev / rows) << proj << " column " << j;
      EXPECT_GT(alpha[size_t(j)], 0.0f);
    }
  }
  EXPECT_EQ(find("backbone.embeddings.weight"), to_float(f.get("backbone.embeddings.weight")));
  EXPECT_EQ(report.zero_binary_weights, 0);
  EXPECT_EQ(report.before[ParamKind::Binary].parameters, 0);  // a full-precision model has no binary kind
  EXPECT_EQ(report.after[ParamKind::Binary].parameters, 2 * (152 * 32 + 32 * 64));
  EXPECT_EQ(report.after[ParamKind::FbiScales].parameters, 2 * 2 * (32 + 64));
  EXPECT_EQ(report.before.parameters() + report.after[ParamKind::FbiScales].parameters, report.after.parameters());
}

TEST(Convert, RefusesBinaryInputAndMamba1) {
  ModelConfig c = tiny_fp_config();
  c.binary = true;
  const TensorSource none = [](const std::string& n) -> HostTensor { throw std::logic_error(n); };
  EXPECT_THROW(fp_to_bimamba(c, none), InvalidArgument);
  c.binary = false;
  c.architecture = Architecture::Mamba1;
  c.dt_rank = 2;
  EXPECT_THROW(fp_to_bimamba(c, none), InvalidArgument);
}

TEST(Convert, LatentToPackedReport) {
  const SafetensorsFile f(test::data_path("bimamba2-tiny/model.safetensors"));
  ModelConfig c = tiny_fp_config();
  c.binary = true;
  ConversionReport report;
  const auto packed = latent_to_packed(c, [&](const std::string& n) { return f.get(n); }, {}, &report);
  EXPECT_EQ(report.before.bytes(), 4 * report.before.parameters());  // the fixture is all F32
  EXPECT_EQ(report.after[ParamKind::Binary].bytes, 2 * (152 * 4 + 32 * 8));
  EXPECT_EQ(report.before[ParamKind::Binary].parameters, report.after[ParamKind::Binary].parameters);
  EXPECT_EQ(report.before.parameters(), report.after.parameters());
  EXPECT_GT(report.to_json()["compression"].get<double>(), 2.0);
}

}  // namespace
}  // namespace bimamba
