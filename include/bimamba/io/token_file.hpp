// Token files: a corpus tokenized once, read back with mmap (docs/training.md, "Token files").
//
// Layout, all integers little-endian:
//   offset  size  field
//        0     8  magic "BMTOKENS"
//        8     4  u32 version (1)
//       12     4  u32 bytes per token: 2 (uint16) or 4 (uint32)
//       16     8  u64 count: number of tokens
//       24     8  u64 vocab_size: every token is < vocab_size
//       32     8  u64 data checksum: FNV-1a 64 of the token bytes
//       40    16  reserved, zero
//       56     8  u64 header checksum: FNV-1a 64 of bytes [0, 56)
//       64        count tokens, each `bytes per token` wide
//
// write_token_file(path, tokens, vocab_size[, dtype]) checks every token against vocab_size (InvalidArgument
// naming the position) and writes atomically (temporary file in the same directory, fsync, rename;
// io/file.hpp). TokenDType::Auto stores uint16 when vocab_size <= 65536, else uint32.
//
// TokenFile::open(path) maps the file and validates it; every problem is a FormatError whose message starts
// with the path: too short for the header (truncated), bad magic, unsupported version or token width, header
// checksum mismatch, file size != 64 + count * width (truncated / trailing bytes), data checksum mismatch, a
// token >= vocab_size (naming its position and value). After open() every token is known to be in
// [0, vocab_size), so readers need no further checks. Tokens come out as int32_t.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "file.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bimamba's token files assume a little-endian host"
#endif

namespace bimamba {

enum class TokenDType : uint32_t { Auto = 0, U16 = 2, U32 = 4 };

inline constexpr char kTokenFileMagic[8] = {'B', 'M', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileHeaderBytes = 64;

namespace detail {

inline uint64_t fnv1a64(const uint8_t* data, size_t bytes, uint64_t hash = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < bytes; ++i) {
    hash ^= data[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

struct TokenFileHeader {
  uint32_t width = 0;
  uint64_t count = 0;
  uint64_t vocab_size = 0;
  uint64_t data_checksum = 0;
};

inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace detail

inline void write_token_file(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size,
                             TokenDType dtype = TokenDType::Auto) {
  BIMAMBA_CHECK(vocab_size > 0, "write_token_file ", path, ": vocab_size must be > 0, got ", vocab_size);
  if (dtype == TokenDType::Auto) dtype = vocab_size <= 65536 ? TokenDType::U16 : TokenDType::U32;
  const uint32_t width = uint32_t(dtype);
  BIMAMBA_CHECK(width == 2 || width == 4, "write_token_file ", path, ": unknown token dtype ", width);
  BIMAMBA_CHECK(width == 4 || vocab_size <= 65536, "write_token_file ", path, ": vocab_size ", vocab_size,
                " does not fit in uint16 tokens");
  std::vector<uint8_t> data(tokens.size() * width);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t t = tokens[i];
    BIMAMBA_CHECK(t >= 0 && t < vocab_size, "write_token_file ", path, ": token ", t, " at position ", i,
                  " is outside [0, ", vocab_size, ")");
    if (width == 2) {
      const uint16_t v = uint16_t(t);
      std::memcpy(&data[i * 2], &v, 2);
    } else {
      const uint32_t v = uint32_t(t);
      std::memcpy(&data[i * 4], &v, 4);
    }
  }
  uint8_t header[kTokenFileHeaderBytes] = {};
  std::memcpy(header, kTokenFileMagic, 8);
  detail::put_u32(header + 8, kTokenFileVersion);
  detail::put_u32(header + 12, width);
  detail::put_u64(header + 16, tokens.size());
  detail::put_u64(header + 24, uint64_t(vocab_size));
  detail::put_u64(header + 32, detail::fnv1a64(data.data(), data.size()));
  detail::put_u64(header + 56, detail::fnv1a64(header, 56));
  AtomicFileWriter out(path);
  out.write(header, sizeof header);
  out.write(data.data(), data.size());
  out.commit();
}

class TokenFile {
 public:
  static TokenFile open(const std::string& path) { return TokenFile(path); }

  const std::string& path() const { return file_->path(); }
  int64_t size() const { return int64_t(header_.count); }
  int64_t vocab_size() const { return int64_t(header_.vocab_size); }
  TokenDType dtype() const { return TokenDType(header_.width); }

  int32_t operator[](int64_t i) const {
    return header_.width == 2 ? int32_t(load<uint16_t>(i)) : int32_t(load<uint32_t>(i));
  }
  // out[0, n) = tokens [begin, begin + n); the range must lie inside the file.
  void read(int64_t begin, int64_t n, int32_t* out) const {
    BIMAMBA_CHECK(begin >= 0 && n >= 0 && begin + n <= size(), "TokenFile ", path(), ": range [", begin, ", ",
                  begin + n, ") outside [0, ", size(), ")");
    if (header_.width == 2) {
      for (int64_t i = 0; i < n; ++i) out[i] = int32_t(load<uint16_t>(begin + i));
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = int32_t(load<uint32_t>(begin + i));
    }
  }
  std::vector<int32_t> read_all() const {
    std::vector<int32_t> out(static_cast<size_t>(size()));
    read(0, size(), out.data());
    return out;
  }

 private:
  explicit TokenFile(const std::string& path) : file_(MappedFile::open(path)) { validate(); }

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    BIMAMBA_THROW(FormatError, path(), ": ", std::forward<Args>(args)...);
  }

  template <class U>
  U load(int64_t i) const {
    U v;
    std::memcpy(&v, tokens_ + size_t(i) * sizeof(U), sizeof(U));
    return v;
  }

  void validate() {
    const uint8_t* p = file_->data();
    const uint64_t bytes = file_->size();
    if (bytes < kTokenFileHeaderBytes)
      fail("truncated: ", bytes, " bytes, but a token file starts with a ", kTokenFileHeaderBytes, "-byte header");
    if (std::memcmp(p, kTokenFileMagic, 8) != 0) fail("bad magic: not a bimamba token file (expected \"BMTOKENS\")");
    const uint32_t version = detail::get_u32(p + 8);
    if (version != kTokenFileVersion) fail("unsupported token file version ", version, " (this reader knows 1)");
    const uint64_t stored = detail::get_u64(p + 56), actual = detail::fnv1a64(p, 56);
    if (stored != actual) fail("header checksum mismatch (stored ", stored, ", computed ", actual, "): corrupt header");
    header_.width = detail::get_u32(p + 12);
    header_.count = detail::get_u64(p + 16);
    header_.vocab_size = detail::get_u64(p + 24);
    header_.data_checksum = detail::get_u64(p + 32);
    if (header_.width != 2 && header_.width != 4)
      fail("unsupported token width ", header_.width, " bytes (2 = uint16, 4 = uint32)");
    if (header_.vocab_size == 0 || header_.vocab_size > (uint64_t(1) << 31))
      fail("vocab size ", header_.vocab_size, " outside [1, 2^31]");
    const uint64_t payload = bytes - kTokenFileHeaderBytes;
    const bool truncated = header_.count > payload / header_.width;
    if (truncated || payload != header_.count * header_.width)
      fail("count mismatch: the header declares ", header_.count, " tokens of ", header_.width, " bytes, but ", payload,
           " bytes follow the header", truncated ? " (truncated)" : " (trailing bytes)");
    tokens_ = p + kTokenFileHeaderBytes;
    const uint64_t data_sum = detail::fnv1a64(tokens_, payload);
    if (data_sum != header_.data_checksum)
      fail("data checksum mismatch (stored ", header_.data_checksum, ", computed ", data_sum, "): corrupt tokens");
    for (int64_t i = 0; i < size(); ++i) {
      const int64_t t = (*this)[i];
      if (uint64_t(t) >= header_.vocab_size)
        fail("token ", t, " at position ", i, " is >= the vocab size ", header_.vocab_size, " declared in the header");
    }
  }

  std::shared_ptr<const MappedFile> file_;
  detail::TokenFileHeader header_;
  const uint8_t* tokens_ = nullptr;
};

}  // namespace bimamba
