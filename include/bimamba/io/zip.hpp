// A minimal read-only ZIP reader for PyTorch checkpoints (torch.save writes an uncompressed zip).
//
// Reads the end-of-central-directory record (searched backwards over the at most 65535-byte comment), the
// zip64 end record when a field overflows (files > 4 GiB, > 65535 entries), every central-directory header
// (with its zip64 extra field), and, per entry, the local header to find where the data starts (PyTorch pads
// the local extra field to align storages to 64 bytes). Entries are served as views into the memory map
// (io/file.hpp), never copied.
//
// Supported: stored entries (method 0), including with a trailing data descriptor (flag bit 3: sizes come from
// the central directory). Refused with FormatError "<path>: ...": compressed entries (any method != 0, named
// with its method number), encrypted entries, multi-disk archives, duplicate names, and any header or data
// range that lies outside the file (truncation). CRC-32 is checked only on request (verify_crc), since
// checksumming a multi-GB checkpoint on every load would cost seconds.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "file.hpp"

namespace bimamba {

struct ZipEntry {
  std::string name;
  const uint8_t* data = nullptr;  // the stored bytes inside the mapping
  uint64_t size = 0;
  uint32_t crc32 = 0;  // from the central directory
};

namespace detail {
inline uint32_t crc32(const uint8_t* data, uint64_t size) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (uint64_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}
}  // namespace detail

class ZipArchive {
 public:
  explicit ZipArchive(const std::string& path) : path_(path), file_(MappedFile::open(path)) { parse(); }

  const std::string& path() const { return path_; }
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }

  const ZipEntry& entry(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) BIMAMBA_THROW(FormatError, path_, ": zip archive has no entry '", name, "'");
    return it->second;
  }

  // FormatError unless the entry's bytes match its CRC-32.
  void verify_crc(const ZipEntry& e) const {
    const uint32_t actual = detail::crc32(e.data, e.size);
    if (actual != e.crc32)
      BIMAMBA_THROW(FormatError, path_, ": zip entry '", e.name, "' is corrupt (CRC-32 ", actual, ", expected ", e.crc32, ")");
  }

 private:
  static constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                            kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    BIMAMBA_THROW(FormatError, path_, ": ", std::forward<Args>(args)...);
  }

  // Little-endian integer of `bytes` width at `offset`; FormatError if it lies outside the file.
  uint64_t read(uint64_t offset, int bytes, const char* what) const {
    if (offset > file_->size() || uint64_t(bytes) > file_->size() - offset)
      fail("truncated: the ", what, " at byte ", offset, " lies past the end of the file (", file_->size(), " bytes)");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | file_->data()[offset + uint64_t(i)];
    return v;
  }

  void parse() {
    const uint64_t size = file_->size();
    if (size < 22) fail("not a zip archive (", size, " bytes, too short for the end-of-central-directory record)");
    uint64_t end = 0;
    bool found = false;
    const uint64_t lowest = size >= 22 + 65535 ? size - 22 - 65535 : 0;
    for (uint64_t pos = size - 22 + 1; pos-- > lowest;) {
      if (read(pos, 4, "end record") == kEndSig && pos + 22 + read(pos + 20, 2, "end record") == size) {
        end = pos;
        found = true;
        break;
      }
    }
    if (!found) fail("not a zip archive (no end-of-central-directory record); is the file truncated?");

    uint64_t disk = read(end + 4, 2, "end record"), cd_disk = read(end + 6, 2, "end record");
    uint64_t count = read(end + 10, 2, "end record");
    uint64_t cd_size = read(end + 12, 4, "end record"), cd_offset = read(end + 16, 4, "end record");
    if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
      if (end < 20 || read(end - 20, 4, "zip64 locator") != kLocator64Sig)
        fail("end record needs a zip64 end record, but the zip64 locator is missing");
      const uint64_t end64 = read(end - 20 + 8, 8, "zip64 locator");
      if (read(end64, 4, "zip64 end record") != kEnd64Sig) fail("no zip64 end record at byte ", end64);
      disk = read(end64 + 16, 4, "zip64 end record");
      cd_disk = read(end64 + 20, 4, "zip64 end record");
      count = read(end64 + 32, 8, "zip64 end record");
      cd_size = read(end64 + 40, 8, "zip64 end record");
      cd_offset = read(end64 + 48, 8, "zip64 end record");
    }
    if (disk != 0 || cd_disk != 0) fail("multi-disk zip archives are not supported");
    if (cd_offset > size || cd_size > size - cd_offset) fail("truncated: the central directory lies past the end of the file");

    uint64_t pos = cd_offset;
    for (uint64_t i = 0; i < count; ++i) {
      if (read(pos, 4, "central directory header") != kCentralSig)
        fail("central directory entry ", i, " at byte ", pos, " has a bad signature");
      const uint64_t flags = read(pos + 8, 2, "central directory header");
      const uint64_t method = read(pos + 10, 2, "central directory header");
      ZipEntry e;
      e.crc32 = uint32_t(read(pos + 16, 4, "central directory header"));
      uint64_t compressed = read(pos + 20, 4, "central directory header");
      uint64_t uncompressed = read(pos + 24, 4, "central directory header");
      const uint64_t name_len = read(pos + 28, 2, "central directory header");
      const uint64_t extra_len = read(pos + 30, 2, "central directory header");
      const uint64_t comment_len = read(pos + 32, 2, "central directory header");
      uint64_t local = read(pos + 42, 4, "central directory header");
      if (pos + 46 + name_len + extra_len > size) fail("truncated: central directory entry ", i, " runs past the end of the file");
      e.name.assign(reinterpret_cast<const char*>(file_->data() + pos + 46), name_len);
      // zip64 extra field: the overflowing values, in this order.
      for (uint64_t x = pos + 46 + name_len; x + 4 <= pos + 46 + name_len + extra_len;) {
        const uint64_t id = read(x, 2, "extra field"), len = read(x + 2, 2, "extra field");
        if (id == 0x0001) {
          uint64_t y = x + 4;
          if (uncompressed == 0xffffffff) uncompressed = read(y, 8, "zip64 extra field"), y += 8;
          if (compressed == 0xffffffff) compressed = read(y, 8, "zip64 extra field"), y += 8;
          if (local == 0xffffffff) local = read(y, 8, "zip64 extra field"), y += 8;
        }
        x += 4 + len;
      }
      if (flags & 1) fail("zip entry '", e.name, "' is encrypted");
      if (method != 0)
        fail("zip entry '", e.name, "' is compressed (method ", method,
             "); only stored (uncompressed) entries are supported, as torch.save writes them");
      if (compressed != uncompressed)
        fail("zip entry '", e.name, "' is stored but its sizes differ (", compressed, " vs ", uncompressed, ")");
      if (read(local, 4, "local header") != kLocalSig) fail("zip entry '", e.name, "' has no local header at byte ", local);
      const uint64_t local_name_len = read(local + 26, 2, "local header");
      const uint64_t data = local + 30 + local_name_len + read(local + 28, 2, "local header");
      if (local_name_len != name_len || local + 30 + name_len > size ||
          std::memcmp(file_->data() + local + 30, e.name.data(), name_len) != 0)
        fail("zip entry '", e.name, "': the local header names a different file than the central directory");
      if (data > size || uncompressed > size - data)
        fail("truncated: data of zip entry '", e.name, "' (", uncompressed, " bytes at byte ", data,
             ") runs past the end of the file (", size, " bytes)");
      e.data = file_->data() + data;
      e.size = uncompressed;
      if (!entries_.emplace(e.name, e).second) fail("zip entry '", e.name, "' appears twice");
      names_.push_back(e.name);
      pos += 46 + name_len + extra_len + comment_len;
    }
  }

  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, ZipEntry> entries_;
  std::vector<std::string> names_;
};

}  // namespace bimamba
