// Bounds before allocation (io/limits.hpp): files that claim huge sizes or nest deeply are refused with a
// FormatError naming the file and the limit, before memory is taken; the limits can be raised at run time.
#include <gtest/gtest.h>

#include <bimamba/io/bpe_json.hpp>
#include <bimamba/io/limits.hpp>
#include <bimamba/io/packed_checkpoint.hpp>
#include <bimamba/io/pickle.hpp>
#include <bimamba/io/safetensors.hpp>
#include <bimamba/io/token_file.hpp>
#include <bimamba/model/config_io.hpp>
#include <cstring>
#include <string>

#include "../io/io_test_support.hpp"

namespace bimamba {
namespace {

// Restores the process-wide limits after a test changes them.
struct LimitsGuard {
  IoLimits saved = io_limits();
  ~LimitsGuard() { io_limits() = saved; }
};

std::string nested_json(int depth) { return std::string(size_t(depth), '[') + std::string(size_t(depth), ']'); }

std::string safetensors_bytes(const std::string& header, const std::string& payload) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + payload;
}

TEST(Limits, DeeplyNestedJsonIsRefused) {
  EXPECT_TRUE(parse_json(nested_json(int(io_limits().max_json_depth)), "ok.json").is_array());
  test::expect_format_error([] { parse_json(nested_json(100000), "deep.json"); },
                            {"deep.json", "nested deeper than the limit of 64", "max_json_depth"});
  // Brackets inside strings do not count.
  EXPECT_TRUE(parse_json("{\"a\": \"" + std::string(1000, '[') + "\"}", "s.json").is_object());
  LimitsGuard guard;
  io_limits().max_json_depth = 200;
  EXPECT_TRUE(parse_json(nested_json(150), "raised.json").is_array());
}

TEST(Limits, DeeplyNestedConfigFileIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("config.json");
  test::write_bytes(path, "{\"model_type\": \"mamba2\", \"x\": " + nested_json(5000) + "}");
  test::expect_format_error([&] { read_config(path); }, {path, "max_json_depth"});
}

TEST(Limits, DeeplyNestedSafetensorsHeaderIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("deep.safetensors");
  test::write_bytes(path, safetensors_bytes("{\"__metadata__\": " + nested_json(100000) + "}", ""));
  test::expect_format_error([&] { SafetensorsFile{path}; }, {path, "max_json_depth"});
}

TEST(Limits, SafetensorsClaiming100GBTensorIsRefusedWithoutAllocating) {
  test::TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  // 25e9 F32 = 100 GB claimed, 8 bytes present.
  test::write_bytes(path, safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [25000000000], "data_offsets": [0, 100000000000]}})",
                                            std::string(8, '\0')));
  test::expect_format_error([&] { SafetensorsFile{path}; }, {path, "truncated", "'w'", "100000000000"});
}

TEST(Limits, TokenFileClaimingABillionTokensIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("billion.tokens");
  write_token_file(path, {1, 2, 3}, 10);
  std::string bytes = test::read_bytes(path);
  const uint64_t count = 1'000'000'000;
  std::memcpy(bytes.data() + 16, &count, 8);
  const uint64_t sum = detail::fnv1a64(reinterpret_cast<const uint8_t*>(bytes.data()), 56);  // a valid header
  std::memcpy(bytes.data() + 56, &sum, 8);
  test::write_bytes(path, bytes);
  test::expect_format_error([&] { TokenFile::open(path); }, {path, "1000000000 tokens", "truncated"});
}

TEST(Limits, ConfigWithHugeVocabIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("config.json");
  const std::string rest = R"(, "hidden_size": 64, "num_hidden_layers": 2, "state_size": 16, "expand": 2,
    "conv_kernel": 4, "head_dim": 16, "n_groups": 1})";
  test::write_bytes(path, R"({"model_type": "mamba2", "vocab_size": 1099511627776)" + rest);  // 2^40
  test::expect_format_error([&] { read_config(path); }, {path, "'vocab_size'", "outside"});
  test::write_bytes(path, R"({"model_type": "mamba2", "vocab_size": 4194304)" + rest);  // 2^22
  test::expect_format_error([&] { read_config(path); }, {path, "vocab_size 4194304", "max_vocab_size"});
  LimitsGuard guard;
  io_limits().max_vocab_size = int64_t(1) << 23;
  EXPECT_EQ(read_config(path).vocab_size, 4194304);
}

TEST(Limits, ConfigDescribingAHugeModelIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("config.json");
  // d_model 2^23, 2^20 layers: ~10^20 parameters; the products fit int64, the count exceeds the limit.
  test::write_bytes(path, R"({"d_model": 8388608, "n_layer": 1048576, "vocab_size": 1000, "ssm_cfg": {"layer": "Mamba2"}})");
  test::expect_format_error([&] { read_config(path); }, {path, "parameters", "max_model_parameters"});
  // Dimensions whose products would overflow int64 are refused by value.
  test::write_bytes(path, R"({"d_model": 64, "n_layer": 2, "vocab_size": 1000, "ssm_cfg": {"layer": "Mamba2", "expand": 1e15}})");
  test::expect_format_error([&] { read_config(path); }, {"'expand'", "outside"});
}

TEST(Limits, PackedConfigDescribingAHugeModelIsRefused) {
  const nlohmann::json j = nlohmann::json::parse(R"({"architecture": "mamba2", "binary": true, "d_model": 4096,
    "n_layer": 16777216, "vocab_size": 1000, "pad_vocab_size_multiple": 8, "d_state": 16, "d_conv": 4, "expand": 2,
    "headdim": 64, "ngroups": 1, "chunk_size": 256, "dt_rank": 0, "conv_bias": true, "proj_bias": false,
    "tie_embeddings": true, "residual_in_fp32": true, "norm_before_gate": false, "norm_eps": 1e-5, "dt_limit_min": 0})");
  test::expect_format_error([&] { packed_config_from_json(j, "packed.safetensors"); },
                            {"packed.safetensors", "max_model_parameters"});
}

TEST(Limits, TokenizerJsonWithHugeIdIsRefused) {
  for (const char* id : {"2000000000", "2147483647"}) {  // 2147483647 + 1 used to overflow int32
    const std::string text =
        std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": )") + id + R"(}, "merges": []},)"
                             R"( "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},)"
                             R"( "decoder": {"type": "ByteLevel"}})";
    test::expect_format_error([&] { bpe_tokenizer_from_json_text(text, "tokenizer.json"); },
                              {"tokenizer.json", "'b'", "max_vocab_size"});
  }
}

TEST(Limits, DeeplyNestedTokenizerJsonIsRefused) {
  const std::string text = R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "x": )" + nested_json(100000) + "}";
  test::expect_format_error([&] { bpe_tokenizer_from_json_text(text, "tokenizer.json"); },
                            {"tokenizer.json", "max_json_depth"});
}

PickleRef unpickle(const std::string& bytes) {
  static const PickleHooks hooks;
  return Unpickler(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "data.pkl", hooks).load();
}

TEST(Limits, DeeplyNestedPickleIsRefused) {
  // PROTO 2, None, then TUPLE1 wrapping the top value 100000 times: 2 bytes per level.
  std::string deep = "\x80\x02N";
  for (int i = 0; i < 100000; ++i) deep += '\x85';
  test::expect_format_error([&] { unpickle(deep + "."); }, {"data.pkl", "max_pickle_depth"});
  // Nested lists (EMPTY_LIST x n, then APPEND x (n - 1)) too.
  std::string lists = "\x80\x02" + std::string(1000, ']') + std::string(999, 'a') + ".";
  test::expect_format_error([&] { unpickle(lists); }, {"data.pkl", "max_pickle_depth"});
  // Within the limit it loads.
  std::string ok = "\x80\x02N";
  for (int i = 0; i < 10; ++i) ok += '\x85';
  EXPECT_EQ(unpickle(ok + ".")->kind, PickleValue::Kind::Tuple);
}

TEST(Limits, RecursivePickleIsRefused) {
  // l = []; l.append(l) (EMPTY_LIST, BINPUT 0, BINGET 0, APPEND): a cycle would leak through shared_ptr.
  test::expect_format_error([] { unpickle(std::string("\x80\x02]q\x00h\x00" "a.", 9)); }, {"data.pkl", "recursive"});
  // a = []; b = [a]; a.append(b): filling a list that already sits in another.
  test::expect_format_error([] { unpickle(std::string("\x80\x02]q\x00]q\x01h\x00" "aa.", 13)); },
                            {"data.pkl", "recursive"});
}

}  // namespace
}  // namespace bimamba
