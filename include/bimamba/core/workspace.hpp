// Workspace arena: one growing block of backend memory from which ops take scratch space, so that hot
// paths (the decode step above all) allocate nothing once warmed up (the CUB two-phase idea, kept in the
// Context instead of at every call site).
//
//   auto mark = ws.mark();
//   float* tmp = ws.take<float>(n);   // 64-byte aligned, valid until ws.release(mark) or reset()
//   ...
//   ws.release(mark);
//
// take() never moves memory already handed out: when the current block is full, a new block is
// chained; reset() (with nothing outstanding) merges the chain into one block of the peak size.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "memory.hpp"

namespace bimamba {

template <class Backend>
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { free_all(); }

  struct Mark {
    size_t block;
    size_t offset;
  };

  Mark mark() const { return {blocks_.empty() ? 0 : blocks_.size() - 1, offset_}; }

  // Returns space for n elements of T, aligned to kAlignment.
  template <class T>
  T* take(size_t n) {
    return static_cast<T*>(take_bytes(n * sizeof(T)));
  }

  void* take_bytes(size_t bytes) {
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    if (blocks_.empty() || offset_ + bytes > blocks_.back().size) {
      const size_t previous = blocks_.empty() ? 0 : blocks_.back().size;
      const size_t size = std::max(bytes, std::max<size_t>(previous * 2, 1 << 20));
      blocks_.push_back({MemoryOps<Backend>::allocate(size), size});
      offset_ = 0;
    }
    void* p = static_cast<char*>(blocks_.back().data) + offset_;
    offset_ += bytes;
    peak_ = std::max(peak_, capacity());
    return p;
  }

  // Gives back everything taken since the mark.
  void release(Mark m) {
    while (blocks_.size() > m.block + 1) {
      MemoryOps<Backend>::deallocate(blocks_.back().data);
      blocks_.pop_back();
    }
    offset_ = blocks_.empty() ? 0 : m.offset;
  }

  // Gives back everything; when more than one block was ever needed (chained now, or chained and already
  // released by a scope), the memory becomes one block of the peak total size, so that the same sequence
  // of take() calls next time needs no allocation (the precondition of capturing it into a CUDA graph).
  void reset() {
    if (blocks_.size() > 1 || capacity() < peak_) {
      free_all();
      blocks_.push_back({MemoryOps<Backend>::allocate(peak_), peak_});
    }
    offset_ = 0;
  }

  // Bytes of backend memory held now, and the most ever held at once.
  size_t capacity() const {
    size_t total = 0;
    for (const auto& b : blocks_) total += b.size;
    return total;
  }
  size_t peak_bytes() const { return peak_; }

 private:
  struct Block {
    void* data;
    size_t size;
  };

  void free_all() {
    for (auto& b : blocks_) MemoryOps<Backend>::deallocate(b.data);
    blocks_.clear();
    offset_ = 0;
  }

  std::vector<Block> blocks_;
  size_t offset_ = 0;
  size_t peak_ = 0;
};

// Releases the workspace back to a mark when it goes out of scope.
template <class Backend>
class WorkspaceScope {
 public:
  explicit WorkspaceScope(Workspace<Backend>& ws) : ws_(ws), mark_(ws.mark()) {}
  ~WorkspaceScope() { ws_.release(mark_); }
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;

 private:
  Workspace<Backend>& ws_;
  typename Workspace<Backend>::Mark mark_;
};

}  // namespace bimamba
