// Files on the host: read-only memory maps, whole-file reads, and atomic writes (POSIX).
//
//   MappedFile::open(path) -> shared_ptr<const MappedFile>: the whole file mapped read-only (PROT_READ,
//       MAP_PRIVATE). Readers hand out views into the mapping and keep it alive by holding the shared_ptr, so
//       multi-GB checkpoints are never copied. An empty file has size() == 0 and data() == nullptr.
//   read_text_file(path) -> std::string with the whole file.
//   AtomicFileWriter: writes to a temporary file in the destination's directory; commit() flushes it to disk
//       (fsync), renames it over the destination and syncs the directory. If commit() is never reached (an
//       exception, an early return) the destructor deletes the temporary file: the destination either keeps
//       its old contents or gets the complete new ones, never a half-written file.
//
// Failures to open / read / write throw bimamba::Error naming the path and the OS error.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "../core/error.hpp"

namespace bimamba {

namespace detail {
inline std::string os_error() { return std::strerror(errno); }

// The directory part of a path ("." when there is none).
inline std::string parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}
}  // namespace detail

class MappedFile {
 public:
  static std::shared_ptr<const MappedFile> open(const std::string& path) {
    return std::shared_ptr<const MappedFile>(new MappedFile(path));
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  explicit MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) BIMAMBA_FAIL(path, ": cannot open: ", detail::os_error());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const std::string err = detail::os_error();
      ::close(fd);
      BIMAMBA_FAIL(path, ": cannot stat: ", err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      BIMAMBA_FAIL(path, ": not a regular file");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const std::string err = detail::os_error();
        ::close(fd);
        BIMAMBA_FAIL(path, ": cannot map ", size_, " bytes: ", err);
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
  }

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) BIMAMBA_FAIL(path, ": cannot open: ", detail::os_error());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) BIMAMBA_FAIL(path, ": read failed");
  return text.str();
}

class AtomicFileWriter {
 public:
  // The temporary is created with mode 0666 minus the umask (what an ordinary file gets; mkstemp's 0600 would
  // leave checkpoints unreadable to other users), under a name no other writer uses (pid + counter + random).
  explicit AtomicFileWriter(const std::string& path) : path_(path) {
    static std::atomic<uint64_t> counter{0};
    std::random_device random;
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
      temp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
                   std::to_string(random());
      fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0) BIMAMBA_FAIL(path, ": cannot create a temporary file next to it: ", detail::os_error());
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
  }

  void write(const void* data, size_t bytes) {
    BIMAMBA_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter: write to ", path_, " after commit");
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) BIMAMBA_FAIL(path_, ": write failed: ", detail::os_error());
      p += n;
      bytes -= size_t(n);
    }
  }

  // Makes the file durable and visible under its final name.
  void commit() {
    BIMAMBA_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter: ", path_, " committed twice");
    if (::fsync(fd_) != 0) BIMAMBA_FAIL(path_, ": fsync failed: ", detail::os_error());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) BIMAMBA_FAIL(path_, ": close failed: ", detail::os_error());
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
      BIMAMBA_FAIL(path_, ": cannot rename the temporary file into place: ", detail::os_error());
    committed_ = true;
    const int dir = ::open(detail::parent_directory(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {  // best effort: some file systems do not allow syncing a directory
      ::fsync(dir);
      ::close(dir);
    }
  }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes the bytes to path atomically (see AtomicFileWriter).
inline void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFileWriter out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace bimamba
