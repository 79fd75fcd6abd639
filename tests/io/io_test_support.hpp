// Helpers for the io tests: a temporary directory removed at the end of the test, raw file writing for
// hand-made (malformed) inputs, and an assertion that a call throws FormatError whose message contains
// every given piece (the file path and the problem).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <bimamba/core/error.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

namespace bimamba::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "bimamba-io-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Little-endian integer of `bytes` width appended to s.
inline void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s += char((v >> (8 * i)) & 0xff);
}

// Runs f, which must throw FormatError with every piece in its message.
template <class F>
void expect_format_error(F&& f, std::initializer_list<std::string> pieces) {
  try {
    f();
    ADD_FAILURE() << "expected FormatError, nothing was thrown";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    for (const std::string& piece : pieces)
      EXPECT_NE(message.find(piece), std::string::npos) << "message '" << message << "' lacks '" << piece << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected FormatError, got another exception: " << e.what();
  }
}

}  // namespace bimamba::test
