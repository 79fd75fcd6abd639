// Malformed inputs, one test per case: each must throw FormatError whose message names the file and the
// problem (never a crash, never a silently wrong value). The inputs are made here, in a temporary directory.
#include <bimamba/io/checkpoint.hpp>
#include <bimamba/model/config_io.hpp>

#include <algorithm>
#include <random>

#include "test_support.hpp"
#include "torch_test_support.hpp"

namespace bimamba {
namespace {

// [u64 header length][header][buffer], the header taken as given (no padding, no validation).
std::string raw_safetensors(const std::string& header, const std::string& buffer) {
  std::string out;
  test::put_le(out, header.size(), 8);
  return out + header + buffer;
}

class BadInput : public ::testing::Test {
 protected:
  // Writes bytes to a file of the temporary directory and returns its path.
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_.file(name);
    test::write_bytes(path, bytes);
    return path;
  }
  test::TempDir dir_;
};

TEST_F(BadInput, SafetensorsTruncatedFile) {
  const std::string good = test::read_bytes(test::data_path("mamba2-tiny/model.safetensors"));
  const std::string path = write("cut.safetensors", good.substr(0, good.size() - 100));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "truncated", "backbone.norm_f.weight"});
  const std::string tiny = write("tiny.safetensors", "\x10\x00\x00");
  test::expect_format_error([&] { SafetensorsFile f(tiny); }, {tiny, "truncated"});
}

TEST_F(BadInput, SafetensorsHeaderLengthPastFileEnd) {
  std::string bytes;
  test::put_le(bytes, 1000, 8);
  bytes += "{\"__metadata__\": {}}";
  const std::string path = write("long.safetensors", bytes);
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "header length 1000", "past the end"});
}

TEST_F(BadInput, SafetensorsHeaderLengthOverLimit) {
  std::string bytes;
  test::put_le(bytes, 200'000'000, 8);
  const std::string path = write("huge.safetensors", bytes + "{}");
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "exceeds the limit"});
}

TEST_F(BadInput, SafetensorsOverlappingOffsets) {
  const std::string path = write("overlap.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "'b'", "overlap", "'a'"});
}

TEST_F(BadInput, SafetensorsGappedOffsets) {
  const std::string path = write("gap.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", std::string(12, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "gap", "[4, 8)", "'b'"});
}

TEST_F(BadInput, SafetensorsBufferNotEndingAtFileEnd) {
  const std::string path = write("trailing.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(12, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "does not end at the end of the file", "4 trailing"});
}

TEST_F(BadInput, SafetensorsUnknownDtype) {
  const std::string path = write("dtype.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "'a'", "unknown dtype 'F31'"});
}

TEST_F(BadInput, SafetensorsShapeSizeMismatch) {
  const std::string path = write("size.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "'a'", "needs 12 bytes", "hold 8"});
}

TEST_F(BadInput, SafetensorsDuplicateName) {
  const std::string path = write("dup.safetensors",
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "'a' twice"});
}

TEST_F(BadInput, SafetensorsHeaderNotJson) {
  const std::string path = write("json.safetensors", raw_safetensors("{\"a\": [", ""));
  test::expect_format_error([&] { SafetensorsFile f(path); }, {path, "not valid JSON"});
}

TEST_F(BadInput, ShardedIndexPointsAtWrongShard) {
  save_safetensors(dir_.file("s1.safetensors"), {HostTensor::from_values<float>("a", {1}, {1.0f})});
  const std::string index = write("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
  test::expect_format_error([&] { ShardedSafetensors s(index); }, {index, "'b'", "s1.safetensors", "does not hold it"});
}

TEST_F(BadInput, PickleOpcodeOutsideAllowList) {
  // INST ('i') builds an object from a named class: the classic code-execution opcode.
  test::PickleWriter p;
  p.proto().mark().raw("ios\nsystem\n").stop();
  const std::string path = write("inst.bin", test::make_torch_zip(p.bytes(), {}));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "data.pkl", "INST (0x69)", "not allowed", "at byte 3"});
}

TEST_F(BadInput, PickleGlobalOutsideAllowList) {
  test::PickleWriter p;
  p.proto().global("os", "system").mark().str("echo pwned").tuple().reduce().stop();
  const std::string path = write("global.bin", test::make_torch_zip(p.bytes(), {}));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "'os.system'", "allow-list"});
}

TEST_F(BadInput, PickleTruncatedWithoutStop) {
  test::PickleWriter p;
  p.proto().empty_dict();
  const std::string path = write("nostop.bin", test::make_torch_zip(p.bytes(), {}));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "without STOP"});
}

TEST_F(BadInput, ZipEntryCompressed) {
  test::PickleWriter p;
  p.proto().empty_dict().stop();
  const std::string path = write("deflate.bin", test::make_torch_zip(p.bytes(), {}, /*pickle_method=*/8));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "archive/data.pkl", "compressed (method 8)"});
}

TEST_F(BadInput, TorchCheckpointTruncated) {
  const std::string good = test::read_bytes(test::data_path("bimamba2-tiny-mamba-ssm/pytorch_model.bin"));
  const std::string path = write("pytorch_model.bin", good.substr(0, good.size() / 2));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "truncated"});
}

TEST_F(BadInput, TorchTensorNotContiguous) {
  test::PickleWriter p;
  p.proto().empty_dict().mark().float_tensor_item("w", "0", 6, 0, {2, 3}, {1, 2}).setitems().stop();
  const std::string path = write("strided.bin", test::make_torch_zip(p.bytes(), {{"0", std::string(24, '\0')}}));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "strides [1, 2]", "contiguous"});
}

TEST_F(BadInput, TorchTensorPastItsStorage) {
  test::PickleWriter p;
  p.proto().empty_dict().mark().float_tensor_item("w", "0", 4, 2, {3}, {1}).setitems().stop();
  const std::string path = write("past.bin", test::make_torch_zip(p.bytes(), {{"0", std::string(16, '\0')}}));
  test::expect_format_error([&] { Checkpoint c(path); }, {path, "storage offset 2", "storage of 4 elements"});
}

TEST_F(BadInput, ConfigMissingKey) {
  std::string text = test::read_bytes(test::data_path("mamba2-tiny/config.json"));
  const size_t at = text.find("\"hidden_size\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("\"hidden_size\"").size(), "\"hidden_sizes\"");
  const std::string path = write("config.json", text);
  test::expect_format_error([&] { read_config(path); }, {path, "missing required key 'hidden_size'"});
}

TEST_F(BadInput, RankMismatchInToTensor) {
  SafetensorsFile f(test::data_path("mamba2-tiny/model.safetensors"));
  test::expect_format_error([&] { to_tensor<3>(f.get("backbone.embeddings.weight")); },
                            {"'backbone.embeddings.weight'", "rank 2", "[96, 32]", "expected rank 3"});
}

TEST_F(BadInput, CheckpointMissingTensor) {
  Checkpoint c(test::data_path("mamba2-tiny"));
  test::expect_format_error([&] { c.get("lm_head.weight"); }, {"mamba2-tiny/model.safetensors", "'lm_head.weight'"});
}

TEST_F(BadInput, RandomCorruptionOnlyEverThrowsFormatError) {
  // Damaged files must fail cleanly: flip a few random bytes of each fixture checkpoint, 150 times each, and
  // read every tensor. Each attempt either succeeds (the damage hit tensor data, or a harmless header byte)
  // or throws FormatError; any other exception fails the test (and a sanitizer build catches memory errors).
  std::mt19937 rng(1234);
  for (const char* fixture : {"mamba2-tiny/model.safetensors", "bimamba2-tiny-mamba-ssm/pytorch_model.bin"}) {
    const std::string good = test::read_bytes(test::data_path(fixture));
    const std::string path = dir_.file("corrupt");
    int refused = 0;
    for (int attempt = 0; attempt < 150; ++attempt) {
      std::string bad = good;
      // Damage the structure (the first 3 KB: header / pickle) or the zip directory at the end, where it matters.
      const size_t region = attempt % 2 ? std::min<size_t>(bad.size(), 3000) : bad.size();
      for (int k = 0; k < 3; ++k) bad[rng() % region] = char(rng());
      test::write_bytes(path, bad);
      try {
        Checkpoint c(path);
        for (const std::string& name : c.names()) (void)to_float(c.get(name));
      } catch (const FormatError& e) {
        ++refused;
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << fixture << " attempt " << attempt << ": not a FormatError: " << e.what();
      }
    }
    EXPECT_GT(refused, 0) << fixture;  // the damage does reach the validated structure
  }
}

}  // namespace
}  // namespace bimamba
