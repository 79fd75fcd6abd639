// PyTorch (torch.save zip + pickle) checkpoints and the format-independent Checkpoint: the Bi-Mamba fixture in
// mamba_ssm layout (pytorch_model.bin) gives bit-identical tensors to the HF safetensors layout after name
// normalization; hand-made checkpoints cover tied tensors sharing one storage, storage offsets and
// _rebuild_parameter.
#include <bimamba/io/checkpoint.hpp>

#include <algorithm>
#include <cstring>
#include <set>

#include "test_support.hpp"
#include "torch_test_support.hpp"

namespace bimamba {
namespace {

bool same_bytes(const HostTensor& a, const HostTensor& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.nbytes() == b.nbytes() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

TEST(TorchCheckpoint, ReadsTheFixtureZip) {
  ZipArchive zip(test::data_path("bimamba2-tiny-mamba-ssm/pytorch_model.bin"));
  EXPECT_EQ(zip.names().size(), 35u);  // data.pkl, 4 small files, 29 storages, serialization_id
  const ZipEntry& pkl = zip.entry("pytorch_model/data.pkl");
  EXPECT_EQ(pkl.size, 2790u);
  EXPECT_NO_THROW(zip.verify_crc(pkl));
  EXPECT_EQ(pkl.data[0], 0x80);  // PROTO
  EXPECT_EQ(zip.entry("pytorch_model/data/0").size, 96u * 32u * 4u);

  TorchCheckpoint ckpt(test::data_path("bimamba2-tiny-mamba-ssm/pytorch_model.bin"));
  EXPECT_EQ(ckpt.names().size(), 29u);
  EXPECT_EQ(ckpt.names().front(), "backbone.embedding.weight");  // mamba_ssm spelling, in pickle order
  const HostTensor in_proj = ckpt.get("backbone.layers.1.mixer.in_proj.weight");
  EXPECT_EQ(in_proj.shape, (std::vector<int64_t>{152, 32}));
  EXPECT_EQ(in_proj.dtype, DType::F32);
}

TEST(Checkpoint, BothBimambaLayoutsGiveIdenticalTensors) {
  Checkpoint hf(test::data_path("bimamba2-tiny"));
  Checkpoint ssm(test::data_path("bimamba2-tiny-mamba-ssm"));
  EXPECT_EQ(hf.format(), Checkpoint::Format::Safetensors);
  EXPECT_EQ(ssm.format(), Checkpoint::Format::TorchZip);
  EXPECT_EQ(hf.names().size(), 28u);
  for (const std::string& name : hf.names()) {
    ASSERT_TRUE(ssm.has(name)) << name;
    EXPECT_TRUE(same_bytes(hf.get(name), ssm.get(name))) << name;
  }
  // The only extra tensor of the mamba_ssm layout is the (tied, here stored) lm_head, equal to the embedding.
  std::set<std::string> extra;
  for (const std::string& name : ssm.names())
    if (!hf.has(name)) extra.insert(name);
  EXPECT_EQ(extra, std::set<std::string>{"lm_head.weight"});
  EXPECT_TRUE(same_bytes(ssm.get("lm_head.weight"), hf.get("backbone.embeddings.weight")));
  EXPECT_FALSE(ssm.has("backbone.embedding.weight"));  // renamed to the HF scheme
  EXPECT_TRUE(checkpoint_is_binary(hf));
  EXPECT_TRUE(checkpoint_is_binary(ssm));
}

TEST(Checkpoint, ReadsFullPrecisionFixtures) {
  Checkpoint m2(test::data_path("mamba2-tiny"));
  EXPECT_FALSE(checkpoint_is_binary(m2));
  EXPECT_FALSE(m2.has("lm_head.weight"));  // tied: absent, the model decides
  EXPECT_EQ(m2.get("backbone.embeddings.weight").shape, (std::vector<int64_t>{96, 32}));
  Checkpoint m1(test::data_path("mamba1-tiny/model.safetensors"));  // a file works as well as its directory
  EXPECT_FALSE(checkpoint_is_binary(m1));
  EXPECT_EQ(m1.get("backbone.layers.1.mixer.A_log").shape, (std::vector<int64_t>{48, 6}));
}

TEST(TorchCheckpoint, TiedTensorsShareOneStorageWithOffsets) {
  test::TempDir dir;
  test::PickleWriter p;
  p.proto().empty_dict().mark();
  p.float_tensor_item("backbone.embedding.weight", "0", 8, 0, {2, 3}, {3, 1});
  p.float_tensor_item("lm_head.weight", "0", 8, 0, {2, 3}, {3, 1});
  p.float_tensor_item("tail", "0", 8, 6, {2}, {1});
  // A parameter: _rebuild_parameter(_rebuild_tensor_v2(...), True, OrderedDict()).
  p.str("scale").global("torch._utils", "_rebuild_parameter").mark().float_tensor("1", 1, 0, {1}, {1});
  p.raw("\x88").global("collections", "OrderedDict").empty_tuple().reduce().tuple().reduce();
  p.setitems().stop();
  const std::string path = dir.file("pytorch_model.bin");
  test::write_bytes(path, test::make_torch_zip(p.bytes(), {{"0", test::float_bytes({1, 2, 3, 4, 5, 6, 7, 8})},
                                                           {"1", test::float_bytes({0.5f})}}));
  Checkpoint ckpt(path);
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"backbone.embeddings.weight", "lm_head.weight", "tail", "scale"}));
  EXPECT_EQ(to_float(ckpt.get("backbone.embeddings.weight")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ckpt.get("lm_head.weight").data(), ckpt.get("backbone.embeddings.weight").data());  // one storage
  EXPECT_EQ(to_float(ckpt.get("tail")), (std::vector<float>{7, 8}));
  EXPECT_EQ(to_float(ckpt.get("scale")), std::vector<float>{0.5f});
}

TEST(TorchCheckpoint, ReadsZip64Archives) {
  // Checkpoints over 4 GiB (the 2.7B models) are zip64: sizes and offsets live in zip64 extra fields and the
  // zip64 end record. The same small state dict, written that way, must read identically.
  test::TempDir dir;
  test::PickleWriter p;
  p.proto().empty_dict().mark().float_tensor_item("w", "0", 3, 0, {3}, {1}).setitems().stop();
  const std::string path = dir.file("zip64.bin");
  test::write_bytes(path, test::make_torch_zip(p.bytes(), {{"0", test::float_bytes({1.5f, -2, 4})}}, 0, /*zip64=*/true));
  ZipArchive zip(path);
  EXPECT_EQ(zip.entry("archive/data/0").size, 12u);
  Checkpoint ckpt(path);
  EXPECT_EQ(to_float(ckpt.get("w")), (std::vector<float>{1.5f, -2, 4}));
}

TEST(Checkpoint, ReadsShardedTorchCheckpointDirectories) {
  test::TempDir dir;
  test::PickleWriter first, second;
  first.proto().empty_dict().mark().float_tensor_item("backbone.embedding.weight", "0", 2, 0, {2}, {1}).setitems().stop();
  second.proto().empty_dict().mark().float_tensor_item("lm_head.weight", "0", 1, 0, {1}, {1}).setitems().stop();
  test::write_bytes(dir.file("pytorch_model-00001-of-00002.bin"),
                    test::make_torch_zip(first.bytes(), {{"0", test::float_bytes({1, 2})}}));
  test::write_bytes(dir.file("pytorch_model-00002-of-00002.bin"),
                    test::make_torch_zip(second.bytes(), {{"0", test::float_bytes({3})}}));
  test::write_bytes(dir.file("pytorch_model.bin.index.json"),
                    R"({"weight_map": {"backbone.embedding.weight": "pytorch_model-00001-of-00002.bin",
                                       "lm_head.weight": "pytorch_model-00002-of-00002.bin"}})");
  Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.format(), Checkpoint::Format::ShardedTorchZip);
  EXPECT_EQ(to_float(ckpt.get("backbone.embeddings.weight")), (std::vector<float>{1, 2}));  // renamed
  EXPECT_EQ(to_float(ckpt.get("lm_head.weight")), std::vector<float>{3});
}

TEST(TorchCheckpoint, ReadsAnOrderedDictStateDictWithMetadata) {
  // model.state_dict() is an OrderedDict carrying a `_metadata` attribute; pickle protocol 2 writes it as
  // OrderedDict() + SETITEM per entry + BUILD({'_metadata': OrderedDict({'': {'version': 1}})}) (the layout
  // Python's pickle produces for such an object). The attribute is dropped, the tensors read.
  test::TempDir dir;
  test::PickleWriter p;
  p.proto().global("collections", "OrderedDict").empty_tuple().reduce();
  p.float_tensor_item("w", "0", 2, 0, {2}, {1}).raw("s");
  p.empty_dict().str("_metadata").global("collections", "OrderedDict").empty_tuple().reduce();
  p.str("").empty_dict().str("version").integer(1).raw("s").raw("s").raw("s").raw("b").stop();
  const std::string path = dir.file("state_dict.bin");
  test::write_bytes(path, test::make_torch_zip(p.bytes(), {{"0", test::float_bytes({5, 6})}}));
  Checkpoint ckpt(path);
  EXPECT_EQ(ckpt.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(to_float(ckpt.get("w")), (std::vector<float>{5, 6}));
}

}  // namespace
}  // namespace bimamba
