// DecodeGraph (model/decode_graph.hpp): the captured and replayed step equals LanguageModel::step bit for bit
// (same kernels, same order, deterministic reductions) for Mamba-2 and packed Bi-Mamba, reproduces the
// fixture's step logits, advances positions like step(), and refuses a bad id before touching the state.
#include <bimamba/cuda.hpp>
#include <bimamba/model/decode_graph.hpp>
#include <bimamba/model/load.hpp>

#include "../model/model_test_util.hpp"

namespace bimamba::test {
namespace {

// FIXTURES.md: a correct float32 implementation matches the float64 reference logits to < 1e-5 relative L2.
constexpr double kTol = 1e-5;

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { BIMAMBA_CUDA_CHECK(cudaStreamCreate(&s)); }
  ~Stream() { cudaStreamDestroy(s); }
};

void check_graph_equals_step(const std::string& folder, bool pack) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
  Context<Cuda> ctx;
  auto model = load_model<Cuda>(ctx, data_path(folder));
  if (pack) model.pack();
  const Fixture f = read_fixture(folder);
  const int64_t B = f.ids.size(0), T = f.ids.size(1), V = model.vocab_size();
  ASSERT_GE(T, 3) << "the graph path starts at the third step";

  Stream stream;
  auto graph_state = model.new_state(B);
  auto eager_state = model.new_state(B);
  DecodeGraph graph(model, graph_state, stream.s);
  std::vector<float> from_graph(size_t(B * T * V));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> ids(static_cast<size_t>(B));
    Tensor<int32_t, 1, Host> column({B});
    for (int64_t b = 0; b < B; ++b) column(b) = ids[size_t(b)] = f.ids(b, t);
    const auto graph_logits = graph.step(ids);
    graph.synchronize();
    const std::vector<float> g = to_vector(graph_logits);
    const auto eager_logits = to_vector(model.step(ctx, to<Cuda>(column), eager_state));
    EXPECT_EQ(g, eager_logits) << folder << " step " << t << (graph.captured() ? " (graph)" : " (eager)");
    for (int64_t b = 0; b < B; ++b)
      std::copy(g.begin() + b * V, g.begin() + (b + 1) * V, from_graph.begin() + (b * T + t) * V);
    EXPECT_EQ(graph_state.positions(), eager_state.positions());
  }
  EXPECT_TRUE(graph.captured());
  EXPECT_LT(relative_l2(from_graph, f.logits), kTol) << folder;
}

TEST(DecodeGraph, Mamba2TinyEqualsStep) { check_graph_equals_step("mamba2-tiny", false); }
TEST(DecodeGraph, BiMamba2TinyPackedEqualsStep) { check_graph_equals_step("bimamba2-tiny", true); }

// A packed model of `folder` on the device and the same one on the host, with their contexts.
struct PackedPair {
  Context<Cuda> ctx;
  Context<Host> host;
  LanguageModel<Cuda> model;
  LanguageModel<Host> reference;
  explicit PackedPair(const std::string& folder)
      : model(load_model<Cuda>(ctx, data_path(folder))), reference(load_model<Host>(host, data_path(folder))) {
    model.pack();
    reference.pack();
  }
};

// The decode fast path on both backends (fused step, bf16 head; the host without tiled signs): the device
// step equals the host step to float rounding, and its unfused step equals its fused one. Tolerance 1e-5:
// the same bound as the fixtures; the bf16 head adds at most the 2^-17 split of x (ops/cuda/dense_gemv.cuh).
TEST(DecodeGraph, FastPathMatchesTheHostFastPathAndTheUnfusedStep) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
  const std::string folder = "bimamba2-tiny";
  PackedPair pair(folder);
  Context<Cuda>& ctx = pair.ctx;
  Context<Host>& host = pair.host;
  LanguageModel<Cuda>& model = pair.model;
  LanguageModel<Host>& reference = pair.reference;
  model.set_fast_path({false, true, true});
  reference.set_fast_path({false, true, true});
  const Fixture f = read_fixture(folder);
  const int64_t B = f.ids.size(0), T = f.ids.size(1);
  auto state = model.new_state(B), unfused_state = model.new_state(B);
  auto host_state = reference.new_state(B);
  std::vector<float> fused, unfused, on_host;
  for (int64_t t = 0; t < T; ++t) {
    Tensor<int32_t, 1, Host> column({B});
    for (int64_t b = 0; b < B; ++b) column(b) = f.ids(b, t);
    const auto ids = to<Cuda>(column);
    const auto a = to_vector(model.step(ctx, ids, state));
    model.set_fast_path({false, false, true});
    const auto u = to_vector(model.step(ctx, ids, unfused_state));
    model.set_fast_path({false, true, true});
    const auto h = to_vector(reference.step(host, column.cview(), host_state));
    fused.insert(fused.end(), a.begin(), a.end());
    unfused.insert(unfused.end(), u.begin(), u.end());
    on_host.insert(on_host.end(), h.begin(), h.end());
  }
  EXPECT_LT(relative_l2(fused, on_host), kTol);
  EXPECT_LT(relative_l2(unfused, fused), kTol);
}

// One sequence of packed Bi-Mamba-2 runs every block in one persistent launch (ops/mamba2_decode_layers.hpp):
// its logits equal the per-block path's and the host's to float rounding (1e-5, the fixture bound), reproduce
// the fixture's logits of sequence 0, and a DecodeGraph captures the cooperative launch and replays it with
// the eager step's bits (the kernel is deterministic for a given grid).
TEST(DecodeGraph, PersistentBlocksMatchThePerBlockPathTheHostAndTheFixture) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const std::string folder : {"bimamba2-tiny", "bimamba2-tiny-mamba-ssm"}) {
    PackedPair pair(folder);
    Context<Cuda>& ctx = pair.ctx;
    Context<Host>& host = pair.host;
    LanguageModel<Cuda>& model = pair.model;
    LanguageModel<Host>& reference = pair.reference;
    reference.set_fast_path({false, true, false});  // fused step; exact signs and an fp32 head, as the fixture
    const Fixture f = read_fixture(folder);
    const int64_t T = f.ids.size(1), V = model.vocab_size();
    auto state = model.new_state(1), per_block_state = model.new_state(1), graph_state = model.new_state(1);
    auto host_state = reference.new_state(1);
    {
      std::vector<Mamba2BlockDecodeWeights<Cuda>> blocks;
      for (int64_t i = 0; i < model.config().n_layer; ++i)
        blocks.push_back(model.mamba2_mixer(i).decode_block(model.norm(i).weight(), model.norm(i).eps(),
                                                            state.layer(i)));
      Tensor<float, 2, Cuda> residual({1, model.config().d_model});
      ASSERT_TRUE(mamba2_decode_layers_persistent(ctx, blocks, residual.cview())) << folder;
    }
    Stream stream;
    DecodeGraph graph(model, graph_state, stream.s);
    std::vector<float> persistent, per_block, on_host;
    for (int64_t t = 0; t < T; ++t) {
      Tensor<int32_t, 1, Host> column({1});
      column(0) = f.ids(0, t);
      const auto ids = to<Cuda>(column);
      model.set_fast_path({false, true, false, true});
      const auto p = to_vector(model.step(ctx, ids, state));
      const auto g = to_vector(graph.step({f.ids(0, t)}));
      graph.synchronize();
      EXPECT_EQ(g, p) << folder << " step " << t << (graph.captured() ? " (graph)" : " (eager)");
      model.set_fast_path({false, true, false, false});
      const auto q = to_vector(model.step(ctx, ids, per_block_state));
      const auto h = to_vector(reference.step(host, column.cview(), host_state));
      persistent.insert(persistent.end(), p.begin(), p.end());
      per_block.insert(per_block.end(), q.begin(), q.end());
      on_host.insert(on_host.end(), h.begin(), h.end());
    }
    EXPECT_TRUE(graph.captured());
    EXPECT_LT(relative_l2(persistent, per_block), kTol) << folder;
    EXPECT_LT(relative_l2(persistent, on_host), kTol) << folder;
    const std::vector<float> expected(f.logits.begin(), f.logits.begin() + T * V);
    EXPECT_LT(relative_l2(persistent, expected), kTol) << folder;
  }
}

TEST(DecodeGraph, BadIdThrowsBeforeTouchingTheState) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device on this machine";
  Context<Cuda> ctx;
  auto model = load_model<Cuda>(ctx, data_path("mamba2-tiny"));
  Stream stream;
  auto state = model.new_state(2);
  DecodeGraph graph(model, state, stream.s);
  const int32_t V = int32_t(model.vocab_size());
  for (int k = 0; k < 3; ++k) graph.step({1, 2});  // eager, captured, replayed
  const auto before = to_vector(state.layer(0).ssm);
  try {
    graph.step({3, V});
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("token id " + std::to_string(V) + " at position 1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(graph.step({1}), InvalidArgument);  // wrong batch
  graph.synchronize();
  EXPECT_EQ(to_vector(state.layer(0).ssm), before);
  EXPECT_EQ(state.positions(), (std::vector<int64_t>{3, 3}));
}

}  // namespace
}  // namespace bimamba::test
