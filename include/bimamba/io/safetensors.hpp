// safetensors (https://github.com/huggingface/safetensors): read with validation, write atomically.
//
// Layout: [u64 little-endian N][N bytes of JSON header][byte buffer]. The header is a JSON object
//   { "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//     "__metadata__": {"<key>": "<string value>", ...} (optional) }
// with offsets relative to the start of the byte buffer; tensor data is row-major little-endian.
//
// Validation (FormatError, message "<path>: <what is wrong>"), as the reference implementation does:
//   - the file holds at least the 8-byte length; N <= 100'000'000 (kSafetensorsMaxHeader); 8 + N <= file size;
//   - the header is a JSON object starting with '{', no duplicate names, every tensor entry has a known dtype,
//     a shape of non-negative integers and two data_offsets begin <= end;
//   - end - begin == numel(shape) * dtype_size(dtype) (shape/size mismatch);
//   - sorted by offset, the tensors tile the buffer exactly: the first starts at 0, each starts where the
//     previous ended (no overlap, no gap), and the last ends exactly at the end of the file (a shorter file is
//     reported as truncated, a longer one as trailing bytes);
//   - __metadata__, if present, maps strings to strings.
//
// SafetensorsFile maps the file (io/file.hpp); get(name) returns a HostTensor viewing the mapping (no copy).
// save_safetensors(path, tensors, metadata) writes tensors in the given order with the header padded by
// spaces to a multiple of 8 bytes (so the buffer starts 8-byte aligned), atomically (io/file.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "file.hpp"
#include "host_tensor.hpp"
#include "limits.hpp"

namespace bimamba {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path) : path_(path), file_(MappedFile::open(path)) { parse(); }

  const std::string& path() const { return path_; }
  // Tensor names in the order their data lies in the file.
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A view of the tensor's bytes in the mapping; FormatError naming the file and the tensor if absent.
  HostTensor get(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) BIMAMBA_THROW(FormatError, path_, ": no tensor named '", name, "'");
    const Entry& e = it->second;
    return HostTensor(name, e.dtype, e.shape, buffer_ + e.begin, size_t(e.end - e.begin), file_);
  }

 private:
  struct Entry {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
  };

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    BIMAMBA_THROW(FormatError, path_, ": ", std::forward<Args>(args)...);
  }

  void parse() {
    const uint8_t* bytes = file_->data();
    const uint64_t file_size = file_->size();
    if (file_size < 8)
      fail("truncated: ", file_size, " bytes, but a safetensors file starts with an 8-byte header length");
    const uint64_t header_size = detail::load_unaligned<uint64_t>(bytes);
    if (header_size > kSafetensorsMaxHeader)
      fail("header length ", header_size, " exceeds the limit of ", kSafetensorsMaxHeader, " bytes");
    if (header_size > file_size - 8)
      fail("header length ", header_size, " runs past the end of the file (", file_size, " bytes)");
    if (header_size == 0 || bytes[8] != '{') fail("header does not start with '{'");
    const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
    const nlohmann::json header = parse_header(header_begin, header_begin + header_size);
    buffer_ = bytes + 8 + header_size;
    const uint64_t buffer_size = file_size - 8 - header_size;

    std::vector<std::pair<std::string, const Entry*>> by_offset;
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        read_metadata(value);
        continue;
      }
      const Entry& e = entries_[name] = read_entry(name, value);
      by_offset.emplace_back(name, &e);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) {
      return a.second->begin != b.second->begin ? a.second->begin < b.second->begin : a.second->end < b.second->end;
    });
    uint64_t covered = 0;
    std::string previous;
    for (const auto& [name, e] : by_offset) {
      if (e->begin < covered)
        fail("tensor '", name, "' data_offsets [", e->begin, ", ", e->end, "] overlap tensor '", previous,
             "' (which ends at ", covered, ")");
      if (e->begin > covered)
        fail("gap in the byte buffer: bytes [", covered, ", ", e->begin, ") before tensor '", name,
             "' belong to no tensor");
      covered = e->end;
      previous = name;
      names_.push_back(name);
    }
    if (covered > buffer_size)
      fail("truncated: tensor '", previous, "' ends at buffer offset ", covered, " but the buffer after the header has only ",
           buffer_size, " bytes");
    if (covered < buffer_size)
      fail("the byte buffer does not end at the end of the file: tensors cover ", covered, " bytes, the buffer has ",
           buffer_size, " (", buffer_size - covered, " trailing bytes)");
  }

  // Parses the header JSON, refusing duplicate top-level names (nlohmann::json would keep the last silently).
  nlohmann::json parse_header(const char* begin, const char* end) const {
    std::set<std::string> seen;
    std::string duplicate;
    const int64_t max_depth = io_limits().max_json_depth;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
          depth >= max_depth)
        fail("header JSON nested deeper than the limit of ", max_depth, " (io_limits().max_json_depth)");
      if (event == nlohmann::json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    };
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(begin, end, callback);
    } catch (const nlohmann::json::exception& e) {
      fail("header is not valid JSON: ", e.what());
    }
    if (!duplicate.empty()) fail("header names tensor '", duplicate, "' twice");
    if (!header.is_object()) fail("header is not a JSON object");
    return header;
  }

  void read_metadata(const nlohmann::json& value) {
    if (!value.is_object()) fail("__metadata__ is not a JSON object");
    for (const auto& [key, v] : value.items()) {
      if (!v.is_string()) fail("__metadata__ value of '", key, "' is not a string: ", v.dump());
      metadata_[key] = v.get<std::string>();
    }
  }

  Entry read_entry(const std::string& name, const nlohmann::json& value) const {
    if (!value.is_object()) fail("entry of tensor '", name, "' is not a JSON object");
    Entry e;
    const auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string()) fail("tensor '", name, "' has no dtype string");
    try {
      e.dtype = dtype_from_name(dtype->get<std::string>());
    } catch (const FormatError&) {
      fail("tensor '", name, "' has unknown dtype '", dtype->get<std::string>(), "'");
    }
    const auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) fail("tensor '", name, "' has no shape array");
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) fail("tensor '", name, "' has a shape entry that is not a non-negative integer: ", d.dump());
      e.shape.push_back(d.get<int64_t>());
    }
    const auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      fail("tensor '", name, "' needs data_offsets [begin, end] of two non-negative integers");
    e.begin = (*offsets)[0].get<uint64_t>();
    e.end = (*offsets)[1].get<uint64_t>();
    if (e.begin > e.end) fail("tensor '", name, "' has data_offsets [", e.begin, ", ", e.end, "] with begin > end");
    int64_t numel = 0;
    try {
      numel = detail::checked_numel(e.shape, "tensor '" + name + "'");
    } catch (const FormatError& err) {
      fail(err.what());
    }
    const uint64_t expected = uint64_t(numel) * dtype_size(e.dtype);
    if (numel != 0 && expected / uint64_t(numel) != dtype_size(e.dtype)) fail("tensor '", name, "' is too large");
    if (e.end - e.begin != expected)
      fail("tensor '", name, "': ", dtype_name(e.dtype), " shape ", detail::shape_to_string(e.shape), " needs ", expected,
           " bytes but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
    return e;
  }

  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  const uint8_t* buffer_ = nullptr;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

// Writes the tensors (in this order) and the metadata as a safetensors file, atomically. Throws
// InvalidArgument for an empty, reserved or repeated tensor name.
inline void save_safetensors(const std::string& path, const std::vector<HostTensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const HostTensor& t : tensors) {
    BIMAMBA_CHECK(!t.name.empty() && t.name != "__metadata__", "save_safetensors ", path, ": invalid tensor name '",
                  t.name, "'");
    BIMAMBA_CHECK(names.insert(t.name).second, "save_safetensors ", path, ": tensor name '", t.name, "' repeated");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_size = text.size();

  AtomicFileWriter out(path);
  out.write(&header_size, sizeof header_size);
  out.write(text.data(), text.size());
  for (const HostTensor& t : tensors) out.write(t.data(), t.nbytes());
  out.commit();
}

}  // namespace bimamba
