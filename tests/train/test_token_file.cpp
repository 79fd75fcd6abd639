// Token files (io/token_file.hpp): round trips in both widths, atomic writes, and a FormatError naming the
// file for every kind of damage.
#include <gtest/gtest.h>

#include <bimamba/io/token_file.hpp>
#include <filesystem>
#include <fstream>

#include "temp_path.hpp"
#include "test_support.hpp"

namespace bimamba {
namespace {

namespace fs = std::filesystem;

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path("dir");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void write_bytes(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  }
  // Opening must fail with a FormatError whose message starts with the path and contains `needle`.
  static void expect_format_error(const std::string& p, const std::string& needle) {
    try {
      TokenFile::open(p);
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const FormatError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(p + ": ", 0), 0u) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  }

  fs::path dir_;
};

std::vector<int32_t> ramp(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 7919) % vocab);
  return t;
}

TEST_F(TokenFileTest, RoundTripsUint16AndUint32) {
  const auto small = ramp(1001, 50277);
  write_token_file(path("a.tokens"), small, 50277);
  const TokenFile a = TokenFile::open(path("a.tokens"));
  EXPECT_EQ(a.dtype(), TokenDType::U16);
  EXPECT_EQ(a.size(), 1001);
  EXPECT_EQ(a.vocab_size(), 50277);
  EXPECT_EQ(a.read_all(), small);
  EXPECT_EQ(fs::file_size(path("a.tokens")), 64u + 2 * 1001);

  const auto big = ramp(333, 128256);
  write_token_file(path("b.tokens"), big, 128256);
  const TokenFile b = TokenFile::open(path("b.tokens"));
  EXPECT_EQ(b.dtype(), TokenDType::U32);
  EXPECT_EQ(b.read_all(), big);
  EXPECT_EQ(b[332], big[332]);

  write_token_file(path("c.tokens"), small, 50277, TokenDType::U32);
  EXPECT_EQ(TokenFile::open(path("c.tokens")).read_all(), small);
  write_token_file(path("empty.tokens"), {}, 10);
  EXPECT_EQ(TokenFile::open(path("empty.tokens")).size(), 0);
}

TEST_F(TokenFileTest, HeaderLayoutIsPinned) {
  write_token_file(path("h.tokens"), {1, 2, 258}, 300);
  const std::string bytes = read_bytes(path("h.tokens"));
  ASSERT_EQ(bytes.size(), 64u + 6);
  EXPECT_EQ(bytes.substr(0, 8), "BMTOKENS");
  EXPECT_EQ(bytes[8], 1);                    // version
  EXPECT_EQ(bytes[12], 2);                   // uint16
  EXPECT_EQ(bytes[16], 3);                   // count
  EXPECT_EQ(uint8_t(bytes[24]), 300 % 256);  // vocab, little-endian
  EXPECT_EQ(bytes[25], 1);
  EXPECT_EQ(bytes.substr(64), std::string("\x01\x00\x02\x00\x02\x01", 6));
}

TEST_F(TokenFileTest, WriteIsAtomicAndChecksTokens) {
  const std::string p = path("w.tokens");
  write_token_file(p, ramp(10, 100), 100);
  EXPECT_THROW(write_token_file(p, {1, 2, 100}, 100), InvalidArgument);  // 100 >= vocab
  EXPECT_EQ(TokenFile::open(p).read_all(), ramp(10, 100));               // old contents intact
  EXPECT_THROW(write_token_file(p, {1}, 70000, TokenDType::U16), InvalidArgument);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.path().filename() != "w.tokens" ? 100 : 1;
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
}

TEST_F(TokenFileTest, DamageIsReportedNamingTheFile) {
  const std::string good = path("good.tokens");
  write_token_file(good, ramp(20, 1000), 1000);
  const std::string bytes = read_bytes(good);

  write_bytes(path("short.tokens"), bytes.substr(0, 40));
  expect_format_error(path("short.tokens"), "truncated: 40 bytes");

  std::string magic = bytes;
  magic[2] = 'X';
  write_bytes(path("magic.tokens"), magic);
  expect_format_error(path("magic.tokens"), "bad magic");

  std::string header = bytes;
  header[16] = 21;  // count 20 -> 21 without fixing the checksum
  write_bytes(path("header.tokens"), header);
  expect_format_error(path("header.tokens"), "header checksum mismatch");

  write_bytes(path("cut.tokens"), bytes.substr(0, bytes.size() - 2));
  expect_format_error(path("cut.tokens"), "count mismatch: the header declares 20 tokens of 2 bytes, but 38 bytes");

  write_bytes(path("long.tokens"), bytes + "xy");
  expect_format_error(path("long.tokens"), "trailing bytes");

  std::string data = bytes;
  data[64 + 7] ^= 1;
  write_bytes(path("data.tokens"), data);
  expect_format_error(path("data.tokens"), "data checksum mismatch");
}

TEST_F(TokenFileTest, TokenOutsideDeclaredVocabIsReported) {
  // A well-formed file (valid checksums) whose vocab size is smaller than a token: hand-built header.
  const std::string p = path("vocab.tokens");
  write_token_file(p, {3, 4, 5, 100, 6}, 101);
  std::string bytes = read_bytes(p);
  auto* h = reinterpret_cast<uint8_t*>(bytes.data());
  detail::put_u64(h + 24, 50);
  detail::put_u64(h + 56, detail::fnv1a64(h, 56));
  write_bytes(p, bytes);
  expect_format_error(p, "token 100 at position 3 is >= the vocab size 50 declared in the header");
}

}  // namespace
}  // namespace bimamba
