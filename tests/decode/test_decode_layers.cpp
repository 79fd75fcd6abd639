// mamba2_decode_layers on Host (ops/mamba2_decode_layers.hpp) is the per-block composition: after one step of
// every block of the packed bimamba2-tiny fixture, the residual stream and every conv / SSM state equal those
// of Mamba2Mixer::step_residual block by block (fused step, exact signs) bit for bit: the same ops in the same
// order. The Cuda persistent kernel is tested against this op in tests/ops_cuda/decode_layers.cu. A residual
// of the wrong width is refused naming the block and the tensor.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <bimamba/model/load.hpp>
#include <bimamba/ops/mamba2_decode_layers.hpp>
#include <test_support.hpp>

namespace bimamba::test {
namespace {

TEST(DecodeLayers, HostOpEqualsStepResidualBlockByBlock) {
  Context<Host> ctx;
  auto model = load_model<Host>(ctx, data_path("bimamba2-tiny"));
  model.pack();
  model.set_fast_path({false, true, false});
  const int64_t B = 2, D = model.config().d_model, layers = model.config().n_layer;
  auto by_op = model.new_state(B), by_block = model.new_state(B);
  auto h_op = tensor_from<float, 2>(random_floats(size_t(B * D), 11, -2.0f, 2.0f), {B, D});
  auto h_block = tensor_from<float, 2>(random_floats(size_t(B * D), 11, -2.0f, 2.0f), {B, D});
  for (int token = 0; token < 3; ++token) {
    std::vector<Mamba2BlockDecodeWeights<Host>> blocks;
    for (int64_t i = 0; i < layers; ++i)
      blocks.push_back(model.mamba2_mixer(i).decode_block(model.norm(i).weight(), model.norm(i).eps(), by_op.layer(i)));
    EXPECT_FALSE(mamba2_decode_layers_persistent(ctx, blocks, h_op.cview()));
    mamba2_decode_layers(ctx, blocks, h_op.view());
    for (int64_t i = 0; i < layers; ++i)
      model.mamba2_mixer(i).step_residual(ctx, h_block.view(), model.norm(i).weight(), model.norm(i).eps(),
                                          by_block.layer(i));
    EXPECT_EQ(to_vector(h_op), to_vector(h_block)) << "token " << token;
    for (int64_t i = 0; i < layers; ++i) {
      EXPECT_EQ(to_vector(by_op.layer(i).conv), to_vector(by_block.layer(i).conv)) << "token " << token;
      EXPECT_EQ(to_vector(by_op.layer(i).ssm), to_vector(by_block.layer(i).ssm)) << "token " << token;
    }
  }
  std::vector<Mamba2BlockDecodeWeights<Host>> blocks{
      model.mamba2_mixer(0).decode_block(model.norm(0).weight(), model.norm(0).eps(), by_op.layer(0))};
  Tensor<float, 2, Host> wrong({B, D + 1});
  try {
    mamba2_decode_layers(ctx, blocks, wrong.view());
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("block 0: norm_weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bimamba::test
