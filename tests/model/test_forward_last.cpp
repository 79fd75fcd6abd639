// LanguageModel::forward_last (the prefill of generation, last position's logits only) gives the last
// position of forward's logits (to fp32 rounding of the head) and leaves exactly the same state behind.
#include <bimamba/model/init.hpp>

#include "model_test_util.hpp"

namespace bimamba::test {
namespace {

TEST(ForwardLast, EqualsTheLastPositionOfForwardAndTheSameState) {
  ModelConfig cfg;
  cfg.architecture = Architecture::Mamba2;
  cfg.binary = true;
  cfg.d_model = 20, cfg.n_layer = 2, cfg.vocab_size = 37, cfg.d_state = 6, cfg.d_conv = 3, cfg.expand = 2;
  cfg.headdim = 5, cfg.ngroups = 2, cfg.chunk_size = 7;
  Context<Host> ctx;
  auto model = init_random(cfg, 31);
  model.pack();
  const int64_t B = 2, L = 11, V = cfg.vocab_size;
  Tensor<int32_t, 2, Host> ids({B, L});
  for (int64_t i = 0; i < B * L; ++i) ids.data()[i] = int32_t((7 * i + 3) % V);
  auto s_all = model.new_state(B), s_last = model.new_state(B);
  const auto all = to_vector(model.forward(ctx, ids.cview(), s_all));
  Tensor<float, 2, Host> last({B, V});
  model.forward_last(ctx, ids.cview(), last.view(), &s_last);
  // The same layers on the same rows; the head then takes 2 rows instead of 22, which may pick another
  // kernel (dense_gemv vs Eigen's GEMM) and summation order: D = 20 fp32 terms, a few ulp (rel. < 1e-6).
  std::vector<float> want;
  for (int64_t b = 0; b < B; ++b)
    want.insert(want.end(), all.begin() + (b * L + L - 1) * V, all.begin() + (b * L + L) * V);
  EXPECT_LT(relative_l2(to_vector(last), want), 1e-6);
  double norm = 0;
  for (float v : want) norm += double(v) * v;
  EXPECT_GT(norm, 0.0);  // the comparison above is not between zeros
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    EXPECT_EQ(to_vector(s_last.ssm(i)), to_vector(s_all.ssm(i))) << "layer " << i;
    EXPECT_EQ(to_vector(s_last.conv(i)), to_vector(s_all.conv(i))) << "layer " << i;
  }
  EXPECT_EQ(s_last.positions(), s_all.positions());
}

}  // namespace
}  // namespace bimamba::test
