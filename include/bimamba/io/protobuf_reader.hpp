// A minimal reader of the protocol buffers wire format (enough for SentencePiece's ModelProto).
//
// A message is a sequence of fields; each starts with a varint key = (field_number << 3) | wire_type:
//   0 varint (LEB128, <= 10 bytes), 1 fixed 64-bit little endian, 2 length-delimited (varint length, then
//   that many bytes: strings, bytes, nested messages, packed repeated), 5 fixed 32-bit little endian.
// Groups (wire types 3, 4) are obsolete and rejected. Unknown fields are skipped by the caller simply by
// ignoring them: next() always consumes a whole field.
//
// Contract: every read is bounds-checked; truncation, an over-long varint, field number 0 or an unknown
// wire type throws FormatError whose message starts with the file name and gives the byte offset.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../core/error.hpp"

namespace bimamba::protobuf {

enum class WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t value = 0;      // varint, fixed64 or fixed32 payload
  std::string_view bytes;  // length-delimited payload

  float as_float() const {
    const auto bits = static_cast<uint32_t>(value);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  int32_t as_int32() const { return static_cast<int32_t>(static_cast<uint32_t>(value)); }
  bool as_bool() const { return value != 0; }
};

class Reader {
 public:
  // `data` is the message; `file` names the file in error messages; `base` is the offset of data in it.
  Reader(std::string_view data, std::string file, size_t base = 0)
      : data_(data), file_(std::move(file)), base_(base) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field into `field`; returns false at the end of the message.
  bool next(Field& field) {
    if (done()) return false;
    const size_t start = pos_;
    const uint64_t key = read_varint();
    field.number = static_cast<uint32_t>(key >> 3);
    if (field.number == 0 || (key >> 3) > 0x1FFFFFFFu) fail(start, "invalid field number ", key >> 3);
    const auto type = static_cast<uint32_t>(key & 7);
    field.bytes = {};
    field.value = 0;
    switch (type) {
      case 0:
        field.type = WireType::kVarint;
        field.value = read_varint();
        break;
      case 1:
        field.type = WireType::kFixed64;
        field.value = read_fixed(8);
        break;
      case 2: {
        field.type = WireType::kLengthDelimited;
        const size_t at = pos_;
        const uint64_t length = read_varint();
        if (length > data_.size() - pos_)
          fail(at, "field ", field.number, " claims ", length, " bytes but only ", data_.size() - pos_, " remain");
        field.bytes = data_.substr(pos_, static_cast<size_t>(length));
        pos_ += static_cast<size_t>(length);
        break;
      }
      case 5:
        field.type = WireType::kFixed32;
        field.value = read_fixed(4);
        break;
      default:
        fail(start, "field ", field.number, " has unsupported wire type ", type);
    }
    return true;
  }

  // A reader over a nested message held in `field` (a length-delimited payload of this reader's data).
  Reader nested(const Field& field) const {
    return Reader(field.bytes, file_, base_ + static_cast<size_t>(field.bytes.data() - data_.data()));
  }

  // Throws unless field has the wire type that the schema gives it.
  void expect(const Field& field, WireType type, const char* what) const {
    if (field.type != type)
      fail(pos_, what, " (field ", field.number, ") has wire type ", static_cast<uint32_t>(field.type),
           ", expected ", static_cast<uint32_t>(type));
  }

  template <class... Args>
  [[noreturn]] void fail(size_t pos, Args&&... args) const {
    BIMAMBA_THROW(FormatError, file_, ": protobuf: ", std::forward<Args>(args)..., " (at byte ", base_ + pos, ")");
  }

 private:
  uint64_t read_varint() {
    const size_t start = pos_;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) fail(start, "truncated varint");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      if (shift == 63 && b > 1) fail(start, "varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(start, "varint longer than 10 bytes");
  }

  uint64_t read_fixed(size_t n) {
    if (data_.size() - pos_ < n) fail(pos_, "truncated fixed", 8 * n, " value");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }

  std::string_view data_;
  std::string file_;
  size_t base_ = 0;
  size_t pos_ = 0;
};

}  // namespace bimamba::protobuf
