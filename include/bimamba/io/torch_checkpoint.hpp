// PyTorch checkpoints written by torch.save (>= 1.6, the zip format): `pytorch_model.bin` of mamba_ssm,
// Bi-Mamba and HF (safe_serialization=False).
//
// Layout: a stored zip (io/zip.hpp) whose entries share one top folder <root>/:
//   <root>/data.pkl      the pickled state dict (protocol 2), read by the allow-list unpickler (io/pickle.hpp)
//   <root>/data/<key>    raw little-endian bytes of storage <key>
//   <root>/byteorder     "little" (refused otherwise), plus version / format files that are not needed.
// In data.pkl every tensor is
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
// where storage is a persistent id ('storage', torch.<T>Storage, key, location, numel) resolved to the zip
// entry <root>/data/<key> (numel * element size bytes), optionally wrapped in torch._utils._rebuild_parameter.
// The top-level object is a dict / collections.OrderedDict of name -> tensor.
//
// Allow-list of globals, exactly: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter, torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage.
// A tensor must be row-major contiguous (strides of size-1 dimensions are free) and lie inside its storage:
// storage_offset + numel <= storage numel. Tensors sharing a storage (tied weights) become views of the same
// bytes. Every HostTensor views the memory map: nothing is copied. Errors: FormatError "<path>: ...".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "host_tensor.hpp"
#include "pickle.hpp"
#include "zip.hpp"

namespace bimamba {

namespace detail {
struct TorchStorage {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;
  int64_t numel = 0;
};
struct TorchTensorRef {
  std::shared_ptr<const TorchStorage> storage;
  int64_t offset = 0;
  std::vector<int64_t> shape;
};

inline const std::map<std::string, DType>& torch_storage_dtypes() {
  static const std::map<std::string, DType> m = {
      {"torch.FloatStorage", DType::F32}, {"torch.DoubleStorage", DType::F64}, {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16}, {"torch.CharStorage", DType::I8}, {"torch.ByteStorage", DType::U8},
      {"torch.BoolStorage", DType::Bool}};
  return m;
}

inline std::vector<int64_t> pickle_int_tuple(const PickleRef& v, const char* what) {
  if (v->kind != PickleValue::Kind::Tuple) BIMAMBA_THROW(FormatError, what, " is not a tuple");
  std::vector<int64_t> out;
  for (const auto& x : v->items) {
    if (x->kind != PickleValue::Kind::Int) BIMAMBA_THROW(FormatError, what, " holds a non-integer");
    out.push_back(x->i);
  }
  return out;
}
}  // namespace detail

class TorchCheckpoint {
 public:
  explicit TorchCheckpoint(const std::string& path) : path_(path) {
    check_magic();
    zip_ = std::make_unique<ZipArchive>(path);
    const std::string root = find_root();
    if (zip_->has(root + "byteorder")) {
      const ZipEntry& order = zip_->entry(root + "byteorder");
      const std::string value(reinterpret_cast<const char*>(order.data), size_t(order.size));
      if (value != "little") BIMAMBA_THROW(FormatError, path_, ": byte order '", value, "' is not supported (need little)");
    }
    const ZipEntry& pkl = zip_->entry(root + "data.pkl");
    zip_->verify_crc(pkl);
    load(root, pkl);
  }

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  HostTensor get(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) BIMAMBA_THROW(FormatError, path_, ": no tensor named '", name, "'");
    return it->second;
  }

 private:
  void check_magic() const {
    const auto file = MappedFile::open(path_);
    const uint8_t* p = file->data();
    if (file->size() >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4) return;
    if (file->size() >= 2 && p[0] == 0x80)
      BIMAMBA_THROW(FormatError, path_, ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it "
                    "with a current torch.save or as safetensors");
    BIMAMBA_THROW(FormatError, path_, ": not a torch.save checkpoint (no zip signature)");
  }

  // The folder holding data.pkl: "<root>/" with no further '/'.
  std::string find_root() const {
    std::string root;
    int found = 0;
    for (const std::string& name : zip_->names()) {
      const size_t slash = name.find('/');
      if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        root = name.substr(0, slash + 1);
        ++found;
      }
    }
    if (found != 1) BIMAMBA_THROW(FormatError, path_, ": expected one <folder>/data.pkl in the zip, found ", found);
    return root;
  }

  void load(const std::string& root, const ZipEntry& pkl) {
    using Kind = PickleValue::Kind;
    const auto mapping = zip_->mapping();
    std::map<std::string, std::shared_ptr<const detail::TorchStorage>> storages;

    PickleHooks hooks;
    hooks.allowed_globals = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                             "torch._utils._rebuild_parameter"};
    for (const auto& [name, dtype] : detail::torch_storage_dtypes()) hooks.allowed_globals.insert(name);

    hooks.persistent_load = [&](const PickleRef& pid) {
      const auto& t = pid->items;
      if (pid->kind != Kind::Tuple || t.size() != 5 || t[0]->kind != Kind::String || t[0]->s != "storage" ||
          t[1]->kind != Kind::Global || t[2]->kind != Kind::String || t[4]->kind != Kind::Int)
        BIMAMBA_THROW(FormatError, "persistent id is not ('storage', <type>, key, location, numel)");
      const auto dtype = detail::torch_storage_dtypes().find(t[1]->s);
      if (dtype == detail::torch_storage_dtypes().end())
        BIMAMBA_THROW(FormatError, "'", t[1]->s, "' is not a storage type");
      auto& storage = storages[t[2]->s];
      if (!storage) {
        const ZipEntry& entry = zip_->entry(root + "data/" + t[2]->s);
        const int64_t numel = t[4]->i;
        if (numel < 0 || entry.size != uint64_t(numel) * dtype_size(dtype->second))
          BIMAMBA_THROW(FormatError, "storage '", t[2]->s, "' of ", numel, " ", dtype_name(dtype->second),
                        " elements needs ", uint64_t(numel) * dtype_size(dtype->second), " bytes, entry '", entry.name,
                        "' holds ", entry.size);
        storage = std::make_shared<const detail::TorchStorage>(detail::TorchStorage{dtype->second, entry.data, numel});
      } else if (storage->dtype != dtype->second) {
        BIMAMBA_THROW(FormatError, "storage '", t[2]->s, "' is used with two dtypes");
      }
      auto v = PickleValue::make(Kind::Object);
      v->object = storage;
      return v;
    };

    hooks.reduce = [&](const std::string& global, const PickleRef& args) -> PickleRef {
      const auto& a = args->items;
      if (global == "collections.OrderedDict") {
        if (!a.empty()) BIMAMBA_THROW(FormatError, "collections.OrderedDict called with arguments");
        return PickleValue::make(Kind::Dict);
      }
      if (global == "torch._utils._rebuild_parameter") {
        if (a.size() != 3 || a[0]->kind != Kind::Object || !std::any_cast<detail::TorchTensorRef>(&a[0]->object))
          BIMAMBA_THROW(FormatError, "torch._utils._rebuild_parameter needs (tensor, requires_grad, hooks)");
        return a[0];
      }
      if (global == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
      BIMAMBA_THROW(FormatError, "calling '", global, "' is not allowed");
    };

    const PickleRef root_value = Unpickler(pkl.data, size_t(pkl.size), path_ + " (" + pkl.name + ")", hooks).load();
    if (root_value->kind != Kind::Dict)
      BIMAMBA_THROW(FormatError, path_, ": data.pkl holds a ", pickle_kind_name(root_value->kind),
                    ", expected a state dict of name -> tensor");
    for (const auto& [key, value] : root_value->entries) {
      if (key->kind != Kind::String) BIMAMBA_THROW(FormatError, path_, ": state dict key is not a string");
      const auto* ref = value->kind == Kind::Object ? std::any_cast<detail::TorchTensorRef>(&value->object) : nullptr;
      if (!ref)
        BIMAMBA_THROW(FormatError, path_, ": state dict entry '", key->s, "' is a ", pickle_kind_name(value->kind),
                      ", not a tensor");
      const size_t element = dtype_size(ref->storage->dtype);
      const int64_t numel = detail::checked_numel(ref->shape, path_ + ": tensor '" + key->s + "'");
      HostTensor t(key->s, ref->storage->dtype, ref->shape, ref->storage->data + size_t(ref->offset) * element,
                   size_t(numel) * element, mapping);
      if (!tensors_.emplace(key->s, std::move(t)).second)
        BIMAMBA_THROW(FormatError, path_, ": tensor '", key->s, "' appears twice");
      names_.push_back(key->s);
    }
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
  static PickleRef rebuild_tensor(const PickleRef& args) {
    const auto& a = args->items;
    const auto* storage = a.size() >= 6 && a[0]->kind == PickleValue::Kind::Object
                              ? std::any_cast<std::shared_ptr<const detail::TorchStorage>>(&a[0]->object)
                              : nullptr;
    if (!storage || a.size() > 7 || a[1]->kind != PickleValue::Kind::Int)
      BIMAMBA_THROW(FormatError, "torch._utils._rebuild_tensor_v2 needs (storage, offset, size, stride, requires_grad, "
                                 "hooks[, metadata])");
    detail::TorchTensorRef ref;
    ref.storage = *storage;
    ref.offset = a[1]->i;
    ref.shape = detail::pickle_int_tuple(a[2], "tensor size");
    const std::vector<int64_t> stride = detail::pickle_int_tuple(a[3], "tensor stride");
    if (stride.size() != ref.shape.size())
      BIMAMBA_THROW(FormatError, "tensor of shape ", detail::shape_to_string(ref.shape), " has ", stride.size(), " strides");
    const int64_t numel = detail::checked_numel(ref.shape, "tensor");
    if (numel > 0) {
      int64_t expected = 1;
      for (size_t d = ref.shape.size(); d-- > 0;) {
        if (ref.shape[d] != 1 && stride[d] != expected)
          BIMAMBA_THROW(FormatError, "tensor of shape ", detail::shape_to_string(ref.shape), " has strides ",
                        detail::shape_to_string(stride), ": only contiguous (row-major) tensors are supported");
        expected *= ref.shape[d];
      }
    }
    if (ref.offset < 0 || ref.offset > ref.storage->numel || numel > ref.storage->numel - ref.offset)
      BIMAMBA_THROW(FormatError, "tensor of shape ", detail::shape_to_string(ref.shape), " at storage offset ",
                    ref.offset, " runs past its storage of ", ref.storage->numel, " elements");
    auto v = PickleValue::make(PickleValue::Kind::Object);
    v->object = ref;
    return v;
  }

  std::string path_;
  std::unique_ptr<ZipArchive> zip_;
  std::map<std::string, HostTensor> tensors_;
  std::vector<std::string> names_;
};

}  // namespace bimamba
