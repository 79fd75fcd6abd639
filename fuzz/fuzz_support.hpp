// Shared by the fuzz targets (libFuzzer): the contract every target checks, and a scratch file for readers
// that take a path.
//
// Contract: feeding any bytes to a reader either succeeds or throws bimamba::Error (FormatError for a
// malformed file, InvalidArgument for a bad request). Anything else is a finding: a crash or sanitizer
// report, a leak, a timeout, running out of the fuzzer's memory limit, or another exception type escaping
// (libFuzzer reports an uncaught exception as a crash).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <bimamba/core/error.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace bimamba::fuzz {

// A private directory created once per process in $TMPDIR (default /tmp); it is left behind, holding one
// small file per target.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* tmp = ::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/bimamba-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("fuzz: cannot create a scratch directory");
    return pattern;
  }();
  return dir;
}

// Writes the bytes to <scratch>/<name> (overwriting it) and returns the path: one file reused for every input.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fuzz: cannot write " + path);
  if (size > 0 && std::fwrite(data, 1, size, f) != size) {
    std::fclose(f);
    throw std::runtime_error("fuzz: short write to " + path);
  }
  std::fclose(f);
  return path;
}

// Runs f; a bimamba::Error is an accepted outcome, anything else propagates to libFuzzer.
template <class F>
void expect_ok_or_error(F&& f) {
  try {
    f();
  } catch (const bimamba::Error&) {
  }
}

}  // namespace bimamba::fuzz
