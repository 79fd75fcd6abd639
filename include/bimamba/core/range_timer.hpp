// RangeTimer: device time per named range, without a profiler. Set on a Context<Cuda>
// (ctx.set_range_timer(&timer)), it records a CUDA event on the context's stream where each ProfileRange
// (core/profile_range.hpp) opens and closes, and summary() turns the event pairs into milliseconds per range
// path ("backward/ssd_scan": the names of the enclosing ranges joined by '/'), summed over calls.
//   time of a range = the stream's time between its two events: its kernels, cuBLAS's included, and the gaps
//                     between them when the host does not launch ahead of the device (launch-bound code).
//   An enclosing range's time includes its children's; ranges the caller opens itself (push / pop) name the
//   top level.
// Contracts: ranges close in the reverse order they open (RAII ranges do); everything timed runs on the
// context's stream; summary() synchronizes on the last event and starts a new collection. Events are pooled
// and reused, so a steady training loop creates none after its first summary. Not for graph capture (events
// recorded during capture are not timestamps); not thread-safe (one per Context).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "cuda_runtime.hpp"

namespace bimamba {

struct RangeTime {
  std::string path;  // "forward/in_proj"
  long calls = 0;    // closed ranges of this path since the last summary
  double ms = 0;     // their summed device time
};

class RangeTimer {
 public:
  RangeTimer() = default;
  RangeTimer(const RangeTimer&) = delete;
  RangeTimer& operator=(const RangeTimer&) = delete;
  ~RangeTimer() {
    for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
  }

  // Opens a range named name inside the open ones; its start event goes on stream.
  void push(const char* name, cudaStream_t stream) {
    std::string path = open_.empty() ? std::string() : ranges_[open_.back()].path + '/';
    path += name;
    ranges_.push_back({std::move(path), record(stream), 0});
    open_.push_back(ranges_.size() - 1);
  }

  // Closes the innermost open range; its end event goes on stream. Does not throw (ProfileRange calls it from
  // its destructor, also while an exception unwinds): a failure to record is kept and thrown by summary().
  void pop(cudaStream_t stream) noexcept {
    if (open_.empty()) return;
    size_t end = 0;
    try {
      end = record(stream);
    } catch (const std::exception& e) {
      if (failure_.empty()) failure_ = e.what();
    }
    ranges_[open_.back()].end = end;
    open_.pop_back();
  }

  // Milliseconds per path in the order the paths first opened, for the ranges closed since the last summary;
  // waits for their events. Throws if a range is still open.
  std::vector<RangeTime> summary() {
    BIMAMBA_CHECK(open_.empty(), "RangeTimer::summary: ", open_.size(), " range(s) still open, the innermost '",
                  open_.empty() ? std::string() : ranges_[open_.back()].path, "'");
    if (!failure_.empty()) {
      const std::string failure = std::move(failure_);
      failure_.clear();
      ranges_.clear();
      used_ = 0;
      throw Error("RangeTimer: recording a range's end failed: " + failure);
    }
    std::vector<RangeTime> out;
    if (!ranges_.empty()) BIMAMBA_CUDA_CHECK(cudaEventSynchronize(events_[used_ - 1]));
    for (const Record& r : ranges_) {
      float ms = 0;
      BIMAMBA_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[r.begin], events_[r.end]));
      auto it = out.begin();
      while (it != out.end() && it->path != r.path) ++it;
      if (it == out.end()) it = out.insert(out.end(), RangeTime{r.path, 0, 0});
      ++it->calls;
      it->ms += double(ms);
    }
    ranges_.clear();
    used_ = 0;
    return out;
  }

 private:
  struct Record {
    std::string path;
    size_t begin, end;  // indices into events_
  };

  size_t record(cudaStream_t stream) {
    if (used_ == events_.size()) {
      cudaEvent_t e;
      BIMAMBA_CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    BIMAMBA_CUDA_CHECK(cudaEventRecord(events_[used_], stream));
    return used_++;
  }

  std::vector<cudaEvent_t> events_;  // pool; the first used_ hold this collection's timestamps
  size_t used_ = 0;
  std::vector<Record> ranges_;  // every range of this collection, open or closed, in opening order
  std::vector<size_t> open_;    // indices into ranges_ of the open ranges, outermost first
  std::string failure_;         // the first failed end event since the last summary
};

}  // namespace bimamba
