// Checkpoint: the tensors of a model checkpoint, name -> HostTensor, whatever the file layout, with names in
// the HF scheme.
//
// Checkpoint(path) accepts a directory or a file. In a directory it looks, in this order, for
//   model.safetensors.index.json  (sharded safetensors, io/checkpoint_sharded.hpp)
//   model.safetensors             (io/safetensors.hpp)
//   pytorch_model.bin.index.json  (sharded torch.save checkpoint, io/checkpoint_sharded.hpp)
//   pytorch_model.bin             (torch.save zip, io/torch_checkpoint.hpp; mamba_ssm / Bi-Mamba checkpoints)
// A file is read by its content and name: a zip signature means torch.save, a name ending in
// ".bin.index.json" an index of torch.save shards, any other ".index.json" an index of safetensors shards,
// anything else safetensors.
//
// Name normalization (mamba_ssm -> HF): `backbone.embedding.weight` becomes `backbone.embeddings.weight`;
// every other mamba_ssm name (backbone.layers.<i>.{norm,mixer.*}, backbone.norm_f.weight, lm_head.weight,
// FBI `.wscale` / `.wbias`) already matches. A checkpoint holding both spellings is refused. A missing tied
// `lm_head.weight` is simply absent (the model decides whether it may be tied).
//
// All tensors are views into memory maps: opening a multi-GB checkpoint copies nothing.
// get(name) on an absent name -> FormatError naming the tensor and the checkpoint path.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "checkpoint_sharded.hpp"
#include "file.hpp"
#include "host_tensor.hpp"
#include "safetensors.hpp"
#include "torch_checkpoint.hpp"

namespace bimamba {

namespace detail {
inline bool io_has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace detail

// The HF name of a tensor named in either scheme.
inline std::string normalize_tensor_name(const std::string& name) {
  if (name == "backbone.embedding.weight") return "backbone.embeddings.weight";
  return name;
}

class Checkpoint {
 public:
  enum class Format { Safetensors, ShardedSafetensors, TorchZip, ShardedTorchZip };

  explicit Checkpoint(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::string file = path;
    if (fs::is_directory(path)) {
      file.clear();
      for (const char* candidate : {"model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                                    "pytorch_model.bin"})
        if (fs::exists(fs::path(path) / candidate)) {
          file = (fs::path(path) / candidate).string();
          break;
        }
      if (file.empty())
        BIMAMBA_THROW(FormatError, path, ": no model.safetensors(.index.json) or pytorch_model.bin(.index.json) in "
                                         "this directory");
    }
    file_ = file;
    if (is_zip(file)) {
      format_ = Format::TorchZip;
      TorchCheckpoint source(file);
      add_all(source);
    } else if (detail::io_has_suffix(file, ".bin.index.json")) {
      format_ = Format::ShardedTorchZip;
      ShardedTorchCheckpoint source(file);
      add_all(source);
    } else if (detail::io_has_suffix(file, ".index.json")) {
      format_ = Format::ShardedSafetensors;
      ShardedSafetensors source(file);
      add_all(source);
    } else {
      format_ = Format::Safetensors;
      SafetensorsFile source(file);
      add_all(source);
    }
  }

  // The path given, and the file actually read (the index file for a sharded checkpoint).
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  Format format() const { return format_; }
  // HF-scheme names, in the order of the source.
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  HostTensor get(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) BIMAMBA_THROW(FormatError, file_, ": checkpoint has no tensor '", name, "'");
    return it->second;
  }

 private:
  static bool is_zip(const std::string& file) {
    const auto mapped = MappedFile::open(file);
    const uint8_t* p = mapped->data();
    return mapped->size() >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4;
  }

  template <class Source>
  void add_all(const Source& source) {
    for (const std::string& original : source.names()) {
      HostTensor t = source.get(original);
      t.name = normalize_tensor_name(original);
      if (tensors_.count(t.name))
        BIMAMBA_THROW(FormatError, file_, ": tensor '", t.name, "' is present under two names (", original, ")");
      names_.push_back(t.name);
      tensors_.emplace(t.name, std::move(t));
    }
  }

  std::string path_, file_;
  Format format_ = Format::Safetensors;
  std::map<std::string, HostTensor> tensors_;
  std::vector<std::string> names_;
};

// True when the checkpoint holds FBI-Linear tensors (Bi-Mamba): any `*.in_proj.wscale`.
inline bool checkpoint_is_binary(const Checkpoint& ckpt) {
  for (const std::string& name : ckpt.names())
    if (detail::io_has_suffix(name, ".in_proj.wscale")) return true;
  return false;
}

}  // namespace bimamba
