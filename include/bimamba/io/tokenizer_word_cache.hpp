// Per-call cache of a tokenizer's encode: word (a view into text that outlives the call) -> where its ids were
// first written in the output, [offset, offset + count). A repeated word copies those ids instead of running
// BPE again. Open addressing with linear probing over (hash, key, value) slots, grown at load 1/2: one
// encode of a whole corpus does a lookup per word, so this avoids std::unordered_map's node allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bimamba {

class WordCache {
 public:
  struct Span {
    size_t offset = 0, count = 0;
  };

  WordCache() : slots_(1024) {}

  // Appends the ids of `word` to `ids`: a copy of the ids its first occurrence produced when the word was
  // seen before, else what encode_fresh() appends (remembered for the next occurrence).
  template <class EncodeFresh>
  void append(std::string_view word, std::vector<int32_t>& ids, EncodeFresh&& encode_fresh) {
    bool fresh = false;
    const size_t before = ids.size();
    Span* span = find_or_insert(word, before, &fresh);
    if (!fresh) {
      const Span seen = *span;
      for (size_t i = 0; i < seen.count; ++i) {
        const int32_t id = ids[seen.offset + i];  // a copy: push_back may reallocate
        ids.push_back(id);
      }
      return;
    }
    encode_fresh();
    // encode_fresh() does not touch this cache, so the span is still where it was.
    span->count = ids.size() - before;
  }

  // The span of `word`, inserting an empty one at `offset` when it is new (then *fresh = true). The pointer
  // stays valid until the next call.
  Span* find_or_insert(std::string_view word, size_t offset, bool* fresh) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    const uint64_t h = hash(word);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& slot = slots_[i];
      if (!slot.used) {
        slot = Slot{h, word, Span{offset, 0}, true};
        ++size_;
        *fresh = true;
        return &slot.span;
      }
      if (slot.hash == h && slot.word == word) {
        *fresh = false;
        return &slot.span;
      }
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string_view word;
    Span span;
    bool used = false;
  };

  static uint64_t hash(std::string_view word) {  // FNV-1a
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : word) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
  }

  void grow() {
    std::vector<Slot> old(2 * slots_.size());
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (!slot.used) continue;
      size_t i = slot.hash & (slots_.size() - 1);
      while (slots_[i].used) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace bimamba
