// Rank-based byte-level BPE (the "model" step of an HF tokenizer.json with "type": "BPE").
//
// A word (the bytes of one pre-token) starts as one symbol per byte. Repeatedly, among all adjacent pairs
// (a, b) that have a merge rule, the pair with the lowest rank (ties: the leftmost) is replaced by the merged
// token; this stops when no adjacent pair has a rule. This is GPT-2's algorithm and what HF tokenizers'
// Word::merge_all computes. Implementation: symbols in a doubly linked list over an array, candidate pairs in
// a binary min-heap keyed (rank, position); a popped candidate is dropped when its left symbol was merged
// away or the pair no longer produces the same token (stale entry). Cost O(n log n) per word.
//
// Tokens are identified by ids; merges are stored as (left id, right id) -> (rank, merged id) in an
// open-addressing hash table. Contract: every byte value has a token (byte_id), checked by the loader.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bimamba {

// (left, right) -> (rank, result): open addressing, linear probing, power-of-two capacity.
class BpeMergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t result = 0;
  };

  void reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    slots_.assign(capacity, Entry{});
    size_ = 0;
  }

  // Keeps the first rule for a pair (the lowest rank when rules are added in rank order).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask();; i = (i + 1) & mask()) {
      if (slots_[i].key == key) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = Entry{key, rank, result};
        ++size_;
        return;
      }
    }
  }

  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask();; i = (i + 1) & mask()) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }


 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t x) {  // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return static_cast<size_t>(x);
  }
  size_t mask() const { return slots_.size() - 1; }
  void grow() {
    std::vector<Entry> old = std::move(slots_);
    reserve(std::max<size_t>(old.size(), 16));
    for (const Entry& e : old)
      if (e.key != kEmpty) insert(static_cast<int32_t>(e.key >> 32), static_cast<int32_t>(e.key & 0xFFFFFFFFu), e.rank, e.result);
  }

  std::vector<Entry> slots_;
  size_t size_ = 0;
};

// Reusable buffers of one encode call (not shared between threads).
struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // -1 at the ends
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, result;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

class BpeModel {
 public:
  BpeModel() { byte_id_.fill(-1); }

  void set_byte_id(unsigned char byte, int32_t id) { byte_id_[byte] = id; }
  int32_t byte_id(unsigned char byte) const { return byte_id_[byte]; }
  BpeMergeTable& merges() { return merges_; }
  const BpeMergeTable& merges() const { return merges_; }

  // Appends the ids of `word` (non-empty bytes) to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out, BpeScratch& scratch) const {
    const auto n = static_cast<int32_t>(word.size());
    if (n == 1) {
      out.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
      return;
    }
    auto& symbols = scratch.symbols;
    auto& heap = scratch.heap;
    symbols.resize(static_cast<size_t>(n));
    heap.clear();
    for (int32_t i = 0; i < n; ++i)
      symbols[static_cast<size_t>(i)] = {byte_id_[static_cast<unsigned char>(word[static_cast<size_t>(i)])], i - 1,
                                         i + 1 < n ? i + 1 : -1, true};
    // Min-heap on (rank, pos): std heap functions build a max-heap, so the comparison is reversed.
    const auto later = [](const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) {
      return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    const auto push_pair = [&](int32_t pos) {
      const int32_t next = symbols[static_cast<size_t>(pos)].next;
      if (next < 0) return;
      const BpeMergeTable::Entry* rule = merges_.find(symbols[static_cast<size_t>(pos)].id, symbols[static_cast<size_t>(next)].id);
      if (!rule) return;
      heap.push_back({rule->rank, pos, rule->result});
      std::push_heap(heap.begin(), heap.end(), later);
    };
    for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const BpeScratch::Candidate top = heap.back();
      heap.pop_back();
      BpeScratch::Symbol& left = symbols[static_cast<size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      BpeScratch::Symbol& right = symbols[static_cast<size_t>(left.next)];
      const BpeMergeTable::Entry* rule = merges_.find(left.id, right.id);
      if (!rule || rule->result != top.result) continue;  // stale: one side changed since it was queued
      left.id = top.result;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
      if (left.prev >= 0) push_pair(left.prev);
      push_pair(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) out.push_back(symbols[static_cast<size_t>(i)].id);
  }

 private:
  std::array<int32_t, 256> byte_id_{};
  BpeMergeTable merges_;
};

}  // namespace bimamba
