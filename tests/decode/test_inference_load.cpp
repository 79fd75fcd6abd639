// Inference-only loading (model/load.hpp, ModelOptions::inference()): a packed Bi-Mamba loaded without
// latent weights and gradients gives the same logits as the training load (latents of +-1, then pack),
// bit for bit on the exact and on the fast path, and its ParamStore holds only the full-precision tensors.
#include <test_support.hpp>

#include <bimamba/model/convert.hpp>
#include <bimamba/model/init.hpp>
#include <bimamba/model/load.hpp>
#include <bimamba/model/storage.hpp>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

namespace bimamba::test {
namespace {

ModelConfig small_bimamba() {
  ModelConfig c;
  c.architecture = Architecture::Mamba2;
  c.binary = true;
  c.d_model = 96, c.n_layer = 3, c.vocab_size = 208, c.d_state = 16, c.headdim = 16, c.ngroups = 2;
  c.chunk_size = 8;
  return c;
}

// Prefill logits of 7 tokens, then 6 steps' logits (ids reduced modulo the vocabulary).
std::vector<float> run_logits(Context<Host>& ctx, const LanguageModel<Host>& model) {
  std::vector<int32_t> prompt = {3, 17, 101, 55, 8, 0, 207};
  for (auto& id : prompt) id %= int32_t(model.vocab_size());
  auto state = model.new_state(1);
  std::vector<float> out = to_vector(model.forward(ctx, to<Host>(tensor_from<int32_t, 2>(prompt, {1, 7})), state));
  Tensor<int32_t, 1, Host> id({1});
  for (int64_t t = 0; t < 6; ++t) {
    id(0) = int32_t((t * 37 + 11) % model.vocab_size());
    const auto logits = to_vector(model.step(ctx, id.cview(), state));
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

// Floats of the store that an inference-only model of this config needs: every non-binary tensor, each
// padded to 16 floats as ParamStore lays them out.
int64_t inference_store_floats(const ModelConfig& c) {
  int64_t n = 0;
  for (const TensorSpec& t : model_tensor_specs(c))
    if (t.kind != ParamKind::Binary) n += (t.numel() + 15) / 16 * 16;
  return n;
}

struct TempFile {
  std::string path = ::testing::TempDir() + "bimamba_infload_" + std::to_string(::getpid()) + ".safetensors";
  ~TempFile() { std::remove(path.c_str()); }
};

TEST(InferenceLoad, PackedFileSameLogitsNoLatentNoGrads) {
  Context<Host> ctx(2);
  const ModelConfig cfg = small_bimamba();
  TempFile file;
  {
    auto source = init_random<Host>(cfg, 5);
    save_packed(ctx, source, file.path, PackedOptions{DType::U32, DType::F32, DType::F32, DType::F32});
  }
  auto trained = load_packed_model<Host>(ctx, file.path);  // training load: +-1 latents, gradients
  auto infer = load_packed_model<Host>(ctx, file.path, ModelOptions::inference());
  ASSERT_TRUE(infer.packed());

  // Byte accounting: no latent floats, no gradient buffer, one copy of the bits.
  const int64_t floats = inference_store_floats(cfg);
  EXPECT_EQ(infer.params().flat_size(), floats);
  EXPECT_FALSE(infer.params().has_grads());
  EXPECT_EQ(int64_t(infer.params().grads().numel()), 0);
  EXPECT_TRUE(trained.params().has_grads());
  const int64_t latent_floats = cfg.n_layer * (cfg.in_proj_rows() * cfg.d_model + cfg.d_model * cfg.d_inner());
  EXPECT_EQ(trained.params().flat_size(), floats + latent_floats);  // both projections' sizes are multiples of 16
  EXPECT_EQ(infer.sign_bytes(), packed_storage(cfg)[ParamKind::Binary].bytes);
  EXPECT_EQ(infer.sign_weight_names().size(), size_t(2 * cfg.n_layer));

  // Same bits and floats through the same kernels: identical logits, exact path and fast path.
  EXPECT_EQ(run_logits(ctx, infer), run_logits(ctx, trained));
  trained.set_fast_path({});
  infer.set_fast_path({});
  EXPECT_EQ(run_logits(ctx, infer), run_logits(ctx, trained));
  // The inference model keeps its bits only in the tiles (rows padded to 32); the training model has both.
  EXPECT_LT(infer.sign_bytes(), trained.sign_bytes());
  infer.set_fast_path({false, false, false});  // the bits come back from the tiles exactly
  trained.set_fast_path({false, false, false});
  EXPECT_EQ(run_logits(ctx, infer), run_logits(ctx, trained));

  EXPECT_THROW(infer.unpack(), InvalidArgument);
  EXPECT_THROW(infer.params().grad<2>(infer.embedding().weight_id()), InvalidArgument);
}

TEST(InferenceLoad, LatentCheckpointPackedAtLoad) {
  Context<Host> ctx(1);
  auto latent = load_model<Host>(ctx, data_path("bimamba2-tiny"));
  latent.pack();
  auto infer = load_model<Host>(ctx, data_path("bimamba2-tiny"), ModelOptions::inference());
  ASSERT_TRUE(infer.packed());
  EXPECT_EQ(infer.params().flat_size(), inference_store_floats(infer.config()));
  EXPECT_EQ(run_logits(ctx, infer), run_logits(ctx, latent));
}

}  // namespace
}  // namespace bimamba::test
