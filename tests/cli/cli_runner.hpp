// Running the built `bimamba` CLI from a test: bimamba("logits --model ...") -> exit code, stdout, stderr;
// quote() for the shell, temp_path() unique per process (ctest runs tests as parallel processes), slurp(), and
// expect_one_line_error() for the CLI's failure contract (non-zero exit, one line naming the subcommand).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <test_support.hpp>

namespace bimamba::test {

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Unique per process: ctest runs the tests of this file as parallel processes.
inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "bimamba_cli_" + std::to_string(::getpid()) + "_" + name;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `bimamba <args>`; stdout captured through popen, stderr through a file.
inline Result bimamba(const std::string& args) {
  const std::string err = temp_path("stderr.txt");
  const std::string command = cli_binary() + " " + args + " 2>" + quote(err);
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err);
  return r;
}

// One line on stderr, naming the subcommand.
inline void expect_one_line_error(const Result& r, const std::string& command, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.err;
  EXPECT_EQ(r.err.rfind("bimamba " + command + ":", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

}  // namespace bimamba::test
