// String -> id lookup for tokenizer vocabularies: the keys live in one byte arena, the table is open
// addressing (linear probing, power-of-two capacity, load <= 1/2) over slots holding a 32-bit hash and an
// entry index, so a lookup touches one slot line and compares bytes only on a hash hit. Built once, then
// read-only (safe to share between threads). Used instead of std::unordered_map<std::string, int> because
// loading a 50k-token vocabulary and its 50k merges does ~200k lookups.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bimamba {

class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    rebuild(capacity);
    entries_.reserve(n);
  }

  // Maps key to id; a key already present keeps its first id and false is returned.
  bool insert(std::string_view key, int32_t id) {
    if (2 * (entries_.size() + 1) > slots_.size()) rebuild(slots_.empty() ? 16 : 2 * slots_.size());
    const uint32_t h = hash(key);
    for (size_t i = h & mask();; i = (i + 1) & mask()) {
      Slot& slot = slots_[i];
      if (slot.entry < 0) {
        slot = {h, static_cast<int32_t>(entries_.size())};
        entries_.push_back({arena_.size(), key.size(), id});
        arena_.append(key);
        return true;
      }
      if (slot.hash == h && key_of(slot.entry) == key) return false;
    }
  }

  // The id of key, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint32_t h = hash(key);
    for (size_t i = h & mask();; i = (i + 1) & mask()) {
      const Slot& slot = slots_[i];
      if (slot.entry < 0) return -1;
      if (slot.hash == h && key_of(slot.entry) == key) return entries_[static_cast<size_t>(slot.entry)].id;
    }
  }

 private:
  struct Slot {
    uint32_t hash;
    int32_t entry;  // -1: empty
  };
  struct Entry {
    size_t offset, length;
    int32_t id;
  };

  static uint32_t hash(std::string_view key) {  // FNV-1a, 64-bit, folded
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : key) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    return static_cast<uint32_t>(h ^ (h >> 32));
  }
  size_t mask() const { return slots_.size() - 1; }
  std::string_view key_of(int32_t entry) const {
    const Entry& e = entries_[static_cast<size_t>(entry)];
    return std::string_view(arena_).substr(e.offset, e.length);
  }
  void rebuild(size_t capacity) {
    slots_.assign(capacity, Slot{0, -1});
    for (size_t e = 0; e < entries_.size(); ++e) {
      const uint32_t h = hash(key_of(static_cast<int32_t>(e)));
      size_t i = h & mask();
      while (slots_[i].entry >= 0) i = (i + 1) & mask();
      slots_[i] = {h, static_cast<int32_t>(e)};
    }
  }

  std::vector<Slot> slots_;
  std::vector<Entry> entries_;
  std::string arena_;
};

}  // namespace bimamba
