// fuzz_make_seeds <out-dir>: writes seed inputs for the formats tests/data has no file of: a packed
// Bi-Mamba checkpoint (packed from tests/data/bimamba2-tiny), a token file, a training checkpoint matching
// fuzz_training_checkpoint's store, a sharded index matching fuzz_sharded_index's shard, and a small
// tokenizer.json. One
// sub-directory per fuzz target. Not a fuzzer.
#include <bimamba/io/checkpoint.hpp>
#include <bimamba/io/packed_checkpoint.hpp>
#include <bimamba/io/token_file.hpp>
#include <bimamba/model/config_io.hpp>
#include <bimamba/train/checkpoint.hpp>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds <out-dir>\n";
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path out = argv[1];
  for (const char* d : {"packed", "token_file", "training_checkpoint", "sharded_index", "tokenizer_json"}) fs::create_directories(out / d);
  const std::string tiny = std::string(BIMAMBA_FUZZ_DATA_DIR) + "/bimamba2-tiny";

  bimamba::ModelConfig config = bimamba::read_config(tiny);
  const bimamba::Checkpoint ckpt(tiny);
  config.binary = bimamba::checkpoint_is_binary(ckpt);
  const auto source = [&](const std::string& name) { return ckpt.get(name); };
  bimamba::save_packed_checkpoint((out / "packed/tiny-u32.safetensors").string(), config,
                                  bimamba::pack_checkpoint(config, source));
  bimamba::PackedOptions u8;
  u8.sign_word = bimamba::DType::U8;
  bimamba::save_packed_checkpoint((out / "packed/tiny-u8.safetensors").string(), config,
                                  bimamba::pack_checkpoint(config, source, u8), u8);

  bimamba::write_token_file((out / "token_file/small.tokens").string(), {1, 2, 3, 0, 4}, 5);
  std::vector<int32_t> wide(40);
  for (size_t i = 0; i < wide.size(); ++i) wide[i] = int32_t(i * 1000);
  bimamba::write_token_file((out / "token_file/wide.tokens").string(), wide, 70000);

  bimamba::Context<bimamba::Host> ctx{1};
  bimamba::ParamStore<bimamba::Host> store;
  store.declare("w", {2, 3});
  store.declare("b", {3}, bimamba::ParamGroup::NoDecay);
  store.allocate();
  bimamba::AdamW<bimamba::Host> opt(store, bimamba::AdamWConfig{});
  bimamba::save_training_checkpoint((out / "training_checkpoint/ckpt.safetensors").string(), store, opt,
                                    bimamba::TrainingState{});

  bimamba::write_file_atomically((out / "sharded_index/index.json").string(),
                                 R"({"metadata": {"total_size": 12}, "weight_map": {"a": "model-00001-of-00001.safetensors",)"
                                 R"( "b": "model-00001-of-00001.safetensors"}})");
  // A small byte-level BPE tokenizer.json: a few tokens, one merge, one special added token.
  bimamba::write_file_atomically((out / "tokenizer_json/tiny.json").string(), R"({"version": "1.0",
 "added_tokens": [{"id": 5, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true}],
 "normalizer": {"type": "NFC"},
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},
 "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true},
 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4}, "merges": ["a b", "\u0120 ab"]}})");
  std::cout << "seeds written to " << out.string() << "\n";
  return 0;
}
