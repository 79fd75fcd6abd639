// Builders for hand-made torch.save checkpoints in the io tests: a stored zip writer and a pickle writer
// emitting the opcodes torch.save uses, so that each malformed input is made in a few readable lines.
#pragma once

#include <bimamba/io/zip.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "io_test_support.hpp"

namespace bimamba::test {

struct ZipItem {
  std::string name;
  std::string data;
  uint16_t method = 0;  // 0 stored; anything else is only declared (the bytes stay as given)
};

// A zip archive of the items (no data descriptors). With zip64 every size and offset field is set to its
// overflow marker and the values live in zip64 extra fields and the zip64 end record, as writers do for
// archives over 4 GiB.
inline std::string make_zip(const std::vector<ZipItem>& items, bool zip64 = false) {
  const uint64_t kMarker32 = 0xffffffff;
  std::string out, central;
  for (const ZipItem& item : items) {
    const uint32_t crc = detail::crc32(reinterpret_cast<const uint8_t*>(item.data.data()), item.data.size());
    const uint64_t local = out.size();
    auto header = [&](std::string& s, bool is_central) {
      std::string extra;
      if (zip64) {
        put_le(extra, 0x0001, 2);
        put_le(extra, is_central ? 24 : 16, 2);
        put_le(extra, item.data.size(), 8);  // uncompressed
        put_le(extra, item.data.size(), 8);  // compressed
        if (is_central) put_le(extra, local, 8);
      }
      put_le(s, is_central ? 0x02014b50 : 0x04034b50, 4);
      if (is_central) put_le(s, 45, 2);  // version made by
      put_le(s, zip64 ? 45 : 20, 2);     // version needed
      put_le(s, 0, 2);                   // flags
      put_le(s, item.method, 2);
      put_le(s, 0, 4);  // time, date
      put_le(s, crc, 4);
      put_le(s, zip64 ? kMarker32 : item.data.size(), 4);
      put_le(s, zip64 ? kMarker32 : item.data.size(), 4);
      put_le(s, item.name.size(), 2);
      put_le(s, extra.size(), 2);
      if (is_central) {
        put_le(s, 0, 2);  // comment length
        put_le(s, 0, 2);  // disk
        put_le(s, 0, 2);  // internal attributes
        put_le(s, 0, 4);  // external attributes
        put_le(s, zip64 ? kMarker32 : local, 4);
      }
      s += item.name + extra;
    };
    header(out, false);
    out += item.data;
    header(central, true);
  }
  const uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const uint64_t end64 = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);  // size of the rest of the record
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);  // disk
    put_le(out, 0, 4);  // central directory disk
    put_le(out, items.size(), 8);
    put_le(out, items.size(), 8);
    put_le(out, central.size(), 8);
    put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4);  // locator
    put_le(out, 0, 4);
    put_le(out, end64, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 4);  // disks
  put_le(out, zip64 ? 0xffff : items.size(), 2);
  put_le(out, zip64 ? 0xffff : items.size(), 2);
  put_le(out, zip64 ? kMarker32 : central.size(), 4);
  put_le(out, zip64 ? kMarker32 : cd_offset, 4);
  put_le(out, 0, 2);  // comment length
  return out;
}

// Pickle opcodes as torch.save (protocol 2) writes them.
class PickleWriter {
 public:
  PickleWriter& raw(const std::string& bytes) { out_ += bytes; return *this; }
  PickleWriter& proto() { return raw("\x80\x02"); }
  PickleWriter& mark() { return raw("("); }
  PickleWriter& empty_dict() { return raw("}"); }
  PickleWriter& empty_tuple() { return raw(")"); }
  PickleWriter& tuple() { return raw("t"); }
  PickleWriter& str(const std::string& s) {
    out_ += 'X';
    put_le(out_, s.size(), 4);
    return raw(s);
  }
  PickleWriter& integer(int64_t v) {
    out_ += 'J';
    put_le(out_, uint64_t(v) & 0xffffffffu, 4);
    return *this;
  }
  PickleWriter& ints(const std::vector<int64_t>& values) {
    mark();
    for (int64_t v : values) integer(v);
    return tuple();
  }
  PickleWriter& global(const std::string& module, const std::string& name) { return raw("c" + module + "\n" + name + "\n"); }
  PickleWriter& reduce() { return raw("R"); }
  PickleWriter& persid() { return raw("Q"); }
  PickleWriter& setitems() { return raw("u"); }
  PickleWriter& stop() { return raw("."); }

  // _rebuild_tensor_v2(storage <key> of <numel> floats, offset, shape, stride, False, OrderedDict()).
  PickleWriter& float_tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                             const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", "FloatStorage").str(key).str("cpu").integer(numel).tuple().persid();
    integer(offset).ints(shape).ints(stride).raw("\x89").global("collections", "OrderedDict").empty_tuple().reduce();
    return tuple().reduce();
  }
  PickleWriter& float_tensor_item(const std::string& name, const std::string& key, int64_t numel, int64_t offset,
                                  const std::vector<int64_t>& shape, const std::vector<int64_t>& stride) {
    return str(name).float_tensor(key, numel, offset, shape, stride);
  }

  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// A torch.save-style zip: archive/data.pkl, archive/byteorder and archive/data/<key> for each storage.
inline std::string make_torch_zip(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                                  uint16_t pickle_method = 0, bool zip64 = false) {
  std::vector<ZipItem> items = {{"archive/data.pkl", pickle, pickle_method}, {"archive/byteorder", "little", 0}};
  for (const auto& [key, data] : storages) items.push_back({"archive/data/" + key, data, 0});
  return make_zip(items, zip64);
}

inline std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace bimamba::test
