// Sharded checkpoints, as HF writes them: an index next to the shards,
//   model.safetensors.index.json  (shards: safetensors)   -> ShardedSafetensors
//   pytorch_model.bin.index.json  (shards: torch.save zip) -> ShardedTorchCheckpoint
// holding { "metadata": {...}, "weight_map": { "<tensor name>": "model-00001-of-00002.safetensors", ... } }.
//
// ShardedCheckpoint<Shard> opens every shard the index names once (each validated by its own reader) and
// serves get(name) from the shard the weight map names. Validation (FormatError naming the index file):
//   - `weight_map` is an object of tensor name -> shard file name; shard names are relative paths inside the
//     index's directory (no absolute paths, no "..");
//   - every listed tensor exists in its shard, and every tensor of a shard is listed for that shard (a shard
//     holding an unlisted tensor means the files do not belong together).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "file.hpp"
#include "host_tensor.hpp"
#include "json.hpp"
#include "safetensors.hpp"
#include "torch_checkpoint.hpp"

namespace bimamba {

template <class Shard>
class ShardedCheckpoint {
 public:
  explicit ShardedCheckpoint(const std::string& index_path) : index_path_(index_path) {
    const nlohmann::json index = read_json_file(index_path);
    const nlohmann::json& weight_map = json_require(index, "weight_map", index_path);
    if (!weight_map.is_object()) BIMAMBA_THROW(FormatError, index_path, ": 'weight_map' is not a JSON object");
    const std::string dir = detail::parent_directory(index_path);
    std::map<std::string, std::shared_ptr<const Shard>> shards;
    for (const auto& [name, shard] : weight_map.items()) {
      if (!shard.is_string())
        BIMAMBA_THROW(FormatError, index_path, ": weight_map entry of '", name, "' is not a file name");
      const std::string file = shard.template get<std::string>();
      if (file.empty() || file[0] == '/' || file.find("..") != std::string::npos)
        BIMAMBA_THROW(FormatError, index_path, ": shard file name '", file, "' of tensor '", name,
                      "' must be a relative path inside the checkpoint directory");
      auto& opened = shards[file];
      if (!opened) opened = std::make_shared<const Shard>(dir + "/" + file);
      if (!opened->has(name))
        BIMAMBA_THROW(FormatError, index_path, ": tensor '", name, "' is mapped to shard '", file, "', which does not hold it");
      where_[name] = opened;
      names_.push_back(name);
    }
    for (const auto& [file, shard] : shards)
      for (const std::string& name : shard->names()) {
        const auto it = where_.find(name);
        if (it == where_.end() || it->second != shard)
          BIMAMBA_THROW(FormatError, index_path, ": shard '", file, "' holds tensor '", name,
                        "', which the weight map does not assign to it");
      }
  }

  const std::string& path() const { return index_path_; }
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  HostTensor get(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) BIMAMBA_THROW(FormatError, index_path_, ": no tensor named '", name, "' in the weight map");
    return it->second->get(name);
  }

 private:
  std::string index_path_;
  std::map<std::string, std::shared_ptr<const Shard>> where_;
  std::vector<std::string> names_;
};

using ShardedSafetensors = ShardedCheckpoint<SafetensorsFile>;
using ShardedTorchCheckpoint = ShardedCheckpoint<TorchCheckpoint>;

}  // namespace bimamba
