// A progress bar on stderr for long subcommands; never on stdout (which carries results and JSON).
//
// Shown only when stderr is a terminal or --progress was given; redrawn at most 10 times a second, as
//   "<label> [##########..........]  512/1024  50%  12.3/s  eta 41s"
// and ended with a newline by finish() or the destructor.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bimamba::cli {

class Progress {
 public:
  Progress(std::string label, bool forced)
      : label_(std::move(label)), enabled_(forced || ::isatty(STDERR_FILENO)), start_(Clock::now()) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  void update(int64_t done, int64_t total) {
    if (!enabled_ || finished_) return;
    const auto now = Clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? double(done) / seconds : 0.0;
    const int width = 30;
    const int filled = total > 0 ? int(double(width) * double(done) / double(total)) : 0;
    std::string bar(size_t(filled), '#');
    bar.append(size_t(width - filled), '.');
    const double eta = rate > 0 ? double(total - done) / rate : 0.0;
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %3d%% %.1f/s eta %.0fs ", label_.c_str(), bar.c_str(), (long long)done,
                 (long long)total, total > 0 ? int(100 * done / total) : 0, rate, eta);
    std::fflush(stderr);
  }

  void finish() {
    if (enabled_ && drawn_ && !finished_) {
      std::fputc('\n', stderr);
      std::fflush(stderr);
    }
    finished_ = true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  bool finished_ = false;
  Clock::time_point start_, last_;
};

}  // namespace bimamba::cli
