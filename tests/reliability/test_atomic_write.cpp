// Atomic writes (io/file.hpp AtomicFileWriter, used by every writer: safetensors, packed and training
// checkpoints, token files, the CLI's outputs): a write that fails after N bytes, for every N across a whole
// file, leaves the previous file byte for byte and no temporary file behind; a rename that cannot happen
// fails with an Error and leaves no temporary either.
#include <gtest/gtest.h>

#include <bimamba/io/file.hpp>
#include <bimamba/io/safetensors.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "../io/io_test_support.hpp"

namespace bimamba {
namespace {

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

// Forwards to an AtomicFileWriter and throws once `limit` bytes have gone through (a crash, a full disk).
class FailingWriter {
 public:
  FailingWriter(const std::string& path, size_t limit) : out_(path), limit_(limit) {}
  void write(const std::string& bytes) {
    for (char c : bytes) {
      if (written_ == limit_) throw Interrupted();
      out_.write(&c, 1);
      ++written_;
    }
  }
  void commit() { out_.commit(); }

 private:
  AtomicFileWriter out_;
  size_t limit_, written_ = 0;
};

size_t entries_in(const std::string& dir) {
  return size_t(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()));
}

TEST(AtomicWrite, FailureAfterAnyNumberOfBytesKeepsThePreviousFile) {
  test::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {HostTensor::from_values<float>("old", {3}, {1.0f, 2.0f, 3.0f})});
  const std::string before = test::read_bytes(path);
  // The bytes of another valid file, written through the failing writer.
  const std::string scratch = dir.file("scratch");
  save_safetensors(scratch, {HostTensor::from_values<float>("new", {4}, {4.0f, 5.0f, 6.0f, 7.0f})});
  const std::string next = test::read_bytes(scratch);
  std::filesystem::remove(scratch);
  for (size_t limit = 0; limit < next.size(); ++limit) {
    EXPECT_THROW(
        {
          FailingWriter out(path, limit);
          out.write(next);
          out.commit();
        },
        Interrupted)
        << "limit " << limit;
    ASSERT_EQ(test::read_bytes(path), before) << "after a failure at byte " << limit;
    ASSERT_EQ(entries_in(dir.path()), 1u) << "a temporary file was left after a failure at byte " << limit;
  }
  FailingWriter out(path, next.size());
  out.write(next);
  out.commit();
  EXPECT_EQ(to_float(SafetensorsFile(path).get("new")), (std::vector<float>{4.0f, 5.0f, 6.0f, 7.0f}));
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicWrite, FailedRenameLeavesNoTemporary) {
  test::TempDir dir;
  const std::string target = dir.file("occupied");
  std::filesystem::create_directories(target + "/inside");  // rename(file, non-empty directory) fails
  EXPECT_THROW(write_file_atomically(target, "bytes"), Error);
  EXPECT_TRUE(std::filesystem::is_directory(target));
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicWrite, MissingDirectoryIsAnError) {
  test::TempDir dir;
  EXPECT_THROW(write_file_atomically(dir.file("no/such/dir/file"), "bytes"), Error);
  EXPECT_EQ(entries_in(dir.path()), 0u);
}

}  // namespace
}  // namespace bimamba
