// fuzz_sharded_index: a model.safetensors.index.json (the input) next to one valid shard
// "model-00001-of-00001.safetensors" (tensors "a" and "b", written once per process): ShardedCheckpoint
// (weight_map, shard names, shard / listing consistency), then every listed tensor.
#include <bimamba/io/checkpoint_sharded.hpp>
#include <bimamba/io/safetensors.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool shard_written = [] {
    const std::string dir = bimamba::fuzz::scratch_dir();
    bimamba::save_safetensors(dir + "/model-00001-of-00001.safetensors",
                              {bimamba::HostTensor::from_values<float>("a", {2}, {1.0f, 2.0f}),
                               bimamba::HostTensor::from_values<int32_t>("b", {1, 1}, {7})});
    return true;
  }();
  (void)shard_written;
  const std::string path = bimamba::fuzz::write_input(data, size, "model.safetensors.index.json");
  bimamba::fuzz::expect_ok_or_error([&] {
    const bimamba::ShardedCheckpoint<bimamba::SafetensorsFile> index(path);
    for (const std::string& name : index.names()) (void)index.get(name).nbytes();
  });
  return 0;
}
