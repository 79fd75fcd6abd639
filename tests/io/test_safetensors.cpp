// safetensors reader/writer and HostTensor conversions: the fixtures read with the expected names, shapes,
// dtypes and values (first/last elements and sums computed independently with Python's struct module),
// every dtype survives a write -> read round trip bit for bit, writes are atomic, sharded checkpoints resolve
// through their index.
#include <bimamba/io/checkpoint.hpp>
#include <bimamba/io/checkpoint_sharded.hpp>
#include <bimamba/io/safetensors.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "io_test_support.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

double sum(const std::vector<float>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST(Safetensors, ReadsMamba2Fixture) {
  SafetensorsFile f(test::data_path("mamba2-tiny/model.safetensors"));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.names().front(), "backbone.embeddings.weight");  // first in the byte buffer
  EXPECT_FALSE(f.has("lm_head.weight"));                       // tied: HF omits it
  const HostTensor emb = f.get("backbone.embeddings.weight");
  EXPECT_EQ(emb.dtype, DType::F32);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{96, 32}));
  const std::vector<float> v = to_float(emb);
  ASSERT_EQ(v.size(), 3072u);
  EXPECT_EQ(v.front(), -0.26968979835510254f);
  EXPECT_EQ(v.back(), 0.25010380148887634f);
  // Sum of 3072 floats accumulated in double: identical to Python's double sum up to reordering (none here).
  EXPECT_NEAR(sum(v), 4.400792932750392, 1e-12);
  EXPECT_NEAR(sum(to_float(f.get("backbone.layers.1.mixer.A_log"))), 1.284243993461132, 1e-12);
}

TEST(Safetensors, ReadsMamba1AndBimambaFixtures) {
  SafetensorsFile m1(test::data_path("mamba1-tiny/model.safetensors"));
  const HostTensor x_proj = m1.get("backbone.layers.0.mixer.x_proj.weight");
  EXPECT_EQ(x_proj.shape, (std::vector<int64_t>{15, 48}));
  EXPECT_NEAR(sum(to_float(x_proj)), -4.474198581163364, 1e-12);  // double accumulation, same order as Python

  SafetensorsFile bi(test::data_path("bimamba2-tiny/model.safetensors"));
  EXPECT_EQ(bi.size(), 28u);  // embedding + 2 layers x 13 + norm_f
  const HostTensor wscale = bi.get("backbone.layers.0.mixer.in_proj.wscale");
  EXPECT_EQ(wscale.shape, (std::vector<int64_t>{1, 32}));
  EXPECT_NEAR(sum(to_float(wscale)), 5.2221633940935135, 1e-12);  // double accumulation, same order as Python
}

TEST(Safetensors, ReadsReferenceFiles) {
  for (const char* model : {"mamba2-tiny", "mamba1-tiny", "bimamba2-tiny", "bimamba2-tiny-mamba-ssm"}) {
    SafetensorsFile ref(test::data_path(std::string(model) + "/reference.safetensors"));
    const HostTensor ids = ref.get("input_ids");
    EXPECT_EQ(ids.dtype, DType::I64) << model;
    ASSERT_EQ(ids.rank(), 2) << model;
    const HostTensor logits = ref.get("logits");
    EXPECT_EQ(logits.dtype, DType::F32) << model;
    ASSERT_EQ(logits.rank(), 3) << model;
    EXPECT_EQ(logits.shape[0], ids.shape[0]) << model;
    EXPECT_EQ(logits.shape[1], ids.shape[1]) << model;
    EXPECT_TRUE(ref.has("gen_ids") && ref.has("gen_logits")) << model;
  }
  SafetensorsFile ref(test::data_path("bimamba2-tiny/reference.safetensors"));
  const std::vector<int32_t> ids = to_int32(ref.get("input_ids"));
  ASSERT_EQ(ids.size(), 42u);
  EXPECT_EQ(ids.front(), 10);
  EXPECT_EQ(ids.back(), 42);
  EXPECT_EQ(std::accumulate(ids.begin(), ids.end(), 0), 1579);
  const Tensor<float, 3, Host> logits = to_tensor<3>(ref.get("logits"));
  EXPECT_EQ(logits.shape(), (Extents<3>{2, 21, 96}));
  EXPECT_EQ(logits(0, 0, 0), 0.4968666732311249f);
  EXPECT_EQ(logits(1, 20, 95), 0.9759931564331055f);
  EXPECT_EQ(to_float(ref.get("distill_loss"))[0], 5.008364200592041f);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  test::TempDir dir;
  std::vector<HostTensor> tensors;
  for (DType t : kAllDTypes) {
    const std::vector<int64_t> shape = {3, 5};
    std::vector<uint8_t> bytes(15 * dtype_size(t));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 37 + int(t));
    if (t == DType::Bool)
      for (auto& b : bytes) b &= 1;
    tensors.emplace_back(std::string("t_") + dtype_name(t), t, shape, bytes);
  }
  tensors.emplace_back("scalar", DType::F32, std::vector<int64_t>{}, std::vector<uint8_t>{0, 0, 128, 63});
  tensors.emplace_back("empty", DType::F16, std::vector<int64_t>{0, 4}, std::vector<uint8_t>{});
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}});

  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("note"), "round trip");
  ASSERT_EQ(f.size(), tensors.size());
  for (const HostTensor& t : tensors) {
    const HostTensor r = f.get(t.name);
    EXPECT_EQ(r.dtype, t.dtype) << t.name;
    EXPECT_EQ(r.shape, t.shape) << t.name;
    ASSERT_EQ(r.nbytes(), t.nbytes()) << t.name;
    EXPECT_TRUE(std::equal(t.data(), t.data() + t.nbytes(), r.data())) << t.name;
  }
  EXPECT_EQ(to_float(f.get("scalar")), std::vector<float>{1.0f});
  // The header is padded so that the buffer starts 8-byte aligned.
  const std::string raw = test::read_bytes(path);
  uint64_t header = 0;
  std::memcpy(&header, raw.data(), 8);
  EXPECT_EQ(header % 8, 0u);
}

TEST(Safetensors, WriteIsAtomic) {
  test::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {HostTensor::from_values<float>("a", {2}, {1.0f, 2.0f})});
  const std::string before = test::read_bytes(path);
  // A repeated name is refused before anything is written: the old file stays, no temporary is left.
  EXPECT_THROW(save_safetensors(path, {HostTensor::from_values<float>("b", {1}, {3.0f}),
                                       HostTensor::from_values<float>("b", {1}, {4.0f})}),
               InvalidArgument);
  EXPECT_EQ(test::read_bytes(path), before);
  // An exception in the middle of writing (after bytes went to the temporary file, before commit) leaves the
  // old file and no temporary.
  try {
    AtomicFileWriter out(path);
    out.write("partial", 7);
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(test::read_bytes(path), before);
  const auto entries = std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator());
  EXPECT_EQ(entries, 1);
  // A committed write replaces the file, with an ordinary file's permissions (0666 minus the umask).
  save_safetensors(path, {HostTensor::from_values<float>("c", {1}, {5.0f})});
  EXPECT_EQ(to_float(SafetensorsFile(path).get("c")), std::vector<float>{5.0f});
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST(HostTensor, ConvertsHalfBfloatDoubleAndIntegers) {
  const HostTensor h = HostTensor::from_values<float16>("h", {3}, {float16(1.5f), float16(-0.25f), float16(65504.0f)});
  EXPECT_EQ(to_float(h), (std::vector<float>{1.5f, -0.25f, 65504.0f}));
  const HostTensor b = HostTensor::from_values<bfloat16>("b", {2}, {bfloat16(3.0f), bfloat16(-1e30f)});
  EXPECT_EQ(to_float(b)[0], 3.0f);
  EXPECT_EQ(to_float(b)[1], float(bfloat16(-1e30f)));
  const HostTensor d = HostTensor::from_values<double>("d", {2}, {0.5, -7.0});
  EXPECT_EQ(to_float(d), (std::vector<float>{0.5f, -7.0f}));
  const HostTensor i = HostTensor::from_values<int32_t>("i", {3}, {-3, 0, 2147483647});
  EXPECT_EQ(to_int64(i), (std::vector<int64_t>{-3, 0, 2147483647}));
  // F8: 0x38 is E4M3 1.0 (exponent 7 = bias), 0x3c is E5M2 1.0 (the upper byte of half 1.0 = 0x3c00).
  EXPECT_EQ(to_float(HostTensor("e4", DType::F8_E4M3, {1}, std::vector<uint8_t>{0x38})), std::vector<float>{1.0f});
  EXPECT_EQ(to_float(HostTensor("e5", DType::F8_E5M2, {1}, std::vector<uint8_t>{0x3c})), std::vector<float>{1.0f});
  test::expect_format_error([&] { to_int64(d); }, {"'d'", "F64", "integer"});
  test::expect_format_error(
      [&] { to_int32(HostTensor::from_values<int64_t>("ids", {1}, {int64_t(1) << 40})); }, {"'ids'", "int32"});
}

TEST(ShardedSafetensors, ResolvesThroughTheIndex) {
  test::TempDir dir;
  save_safetensors(dir.file("model-00001-of-00002.safetensors"),
                   {HostTensor::from_values<float>("a", {2}, {1.0f, 2.0f})});
  save_safetensors(dir.file("model-00002-of-00002.safetensors"),
                   {HostTensor::from_values<float>("b", {1}, {3.0f}), HostTensor::from_values<int64_t>("c", {1}, {7})});
  test::write_bytes(dir.file("model.safetensors.index.json"),
                    R"({"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                        "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  ShardedSafetensors s(dir.file("model.safetensors.index.json"));
  EXPECT_EQ(s.names().size(), 3u);
  EXPECT_EQ(to_float(s.get("a")), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(to_float(s.get("b")), std::vector<float>{3.0f});
  EXPECT_EQ(to_int64(s.get("c")), std::vector<int64_t>{7});
  // The directory reads the same through Checkpoint, which prefers the index over any single file.
  Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.format(), Checkpoint::Format::ShardedSafetensors);
  EXPECT_EQ(ckpt.names().size(), 3u);
  EXPECT_EQ(to_float(ckpt.get("b")), std::vector<float>{3.0f});
}

}  // namespace
}  // namespace bimamba
