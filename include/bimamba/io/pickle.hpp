// A restricted unpickler: the subset of Python's pickle protocol 2 that torch.save state dicts use, and
// nothing else. It never executes anything: a GLOBAL must be on the caller's allow-list, and REDUCE /
// BINPERSID are handed to caller hooks that build plain values (io/torch_checkpoint.hpp supplies them).
//
// Opcodes understood (pickletools names):
//   PROTO STOP MARK EMPTY_DICT EMPTY_LIST EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 BINUNICODE
//   BINPUT LONG_BINPUT BINGET LONG_BINGET GLOBAL BININT BININT1 BININT2 LONG1 BINFLOAT NONE NEWTRUE NEWFALSE
//   REDUCE BINPERSID SETITEM SETITEMS APPEND APPENDS BUILD (on a dict only: the state, e.g. the `_metadata`
//   attribute torch attaches to an OrderedDict state dict, is ignored)
// Anything else -> FormatError "<what>: pickle opcode <name> (0x..) at byte N is not allowed"; a GLOBAL off
// the allow-list -> FormatError naming it; malformed streams (stack underflow, missing MARK, a memo miss,
// truncation, no STOP) -> FormatError with the byte offset.
//
// Bounds (io/limits.hpp): containers nest at most io_limits().max_pickle_depth deep, and a container may only
// be filled (APPEND(S), SETITEM(S)) while it is not itself inside another container, so no value can
// contain itself: the value graph is acyclic (no leak through shared_ptr cycles) and shallow (releasing it
// cannot overflow the stack). torch.save output always fills a container before placing it.
//
// Values: PickleValue (None, Bool, Int, Float, String, Tuple, List, Dict in insertion order, Global naming
// "module.name", Object holding whatever a hook built in a std::any). Values are shared (shared_ptr) exactly
// as the pickle memo shares them, so two references to one storage stay one object.
#pragma once

#include <algorithm>
#include <any>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "limits.hpp"

namespace bimamba {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  int64_t i = 0;                                        // Bool (0/1), Int
  double f = 0;                                         // Float
  std::string s;                                        // String; Global: "module.name"
  std::vector<PickleRef> items;                         // Tuple, List
  std::vector<std::pair<PickleRef, PickleRef>> entries; // Dict (insertion order)
  std::any object;                                      // Object
  int64_t depth = 0;                                    // nesting below this value (0 for a scalar or empty)
  bool contained = false;                               // placed inside a Tuple / List / Dict

  static PickleRef make(Kind k) {
    auto v = std::make_shared<PickleValue>();
    v->kind = k;
    return v;
  }
};

inline const char* pickle_kind_name(PickleValue::Kind k) {
  switch (k) {
    case PickleValue::Kind::None: return "None";
    case PickleValue::Kind::Bool: return "bool";
    case PickleValue::Kind::Int: return "int";
    case PickleValue::Kind::Float: return "float";
    case PickleValue::Kind::String: return "str";
    case PickleValue::Kind::Tuple: return "tuple";
    case PickleValue::Kind::List: return "list";
    case PickleValue::Kind::Dict: return "dict";
    case PickleValue::Kind::Global: return "global";
    case PickleValue::Kind::Object: return "object";
  }
  return "?";
}

struct PickleHooks {
  std::set<std::string> allowed_globals;  // "module.name"
  // REDUCE: callable (an allowed global, by name) applied to the argument tuple.
  std::function<PickleRef(const std::string& global, const PickleRef& args)> reduce;
  // BINPERSID: the persistent id -> the object it stands for.
  std::function<PickleRef(const PickleRef& pid)> persistent_load;
};

namespace detail {
// pickletools names of all opcodes, for error messages.
inline std::string pickle_opcode_name(uint8_t op) {
  static const std::unordered_map<uint8_t, const char*> names = {
      {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"}, {'F', "FLOAT"}, {'I', "INT"},
      {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"}, {'M', "BININT2"}, {'N', "NONE"}, {'P', "PERSID"},
      {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"}, {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"},
      {'V', "UNICODE"}, {'X', "BINUNICODE"}, {'a', "APPEND"}, {'b', "BUILD"}, {'c', "GLOBAL"}, {'d', "DICT"},
      {'}', "EMPTY_DICT"}, {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"}, {'i', "INST"}, {'j', "LONG_BINGET"},
      {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"}, {'q', "BINPUT"}, {'r', "LONG_BINPUT"},
      {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"}, {'u', "SETITEMS"}, {'G', "BINFLOAT"},
      {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"},
      {0x86, "TUPLE2"}, {0x87, "TUPLE3"}, {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"},
      {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"}, {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"},
      {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x92, "NEWOBJ_EX"},
      {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"}, {0x95, "FRAME"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
      {0x98, "READONLY_BUFFER"}};
  const auto it = names.find(op);
  std::ostringstream out;
  out << (it == names.end() ? "<unknown>" : it->second) << " (0x" << std::hex << int(op) << ")";
  return out.str();
}
}  // namespace detail

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, std::string what, const PickleHooks& hooks)
      : data_(data), size_(size), what_(std::move(what)), hooks_(hooks) {}

  PickleRef load() {
    using Kind = PickleValue::Kind;
    while (pos_ < size_) {
      op_pos_ = pos_;
      const uint8_t op = data_[pos_++];
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t version = u8();
          if (version > 5) fail("unknown pickle protocol ", int(version));
          break;
        }
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty()) fail("STOP with ", stack_.size(), " values on the stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '}': push(PickleValue::make(Kind::Dict)); break;
        case ']': push(PickleValue::make(Kind::List)); break;
        case ')': push(PickleValue::make(Kind::Tuple)); break;
        case 't': {
          auto t = PickleValue::make(Kind::Tuple);
          t->items = pop_mark();
          for (const PickleRef& item : t->items) adopt(t.get(), item);
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto t = PickleValue::make(Kind::Tuple);
          t->items.resize(size_t(op - 0x84));
          for (size_t k = t->items.size(); k-- > 0;) t->items[k] = pop();
          for (const PickleRef& item : t->items) adopt(t.get(), item);
          push(t);
          break;
        }
        case 'X': {  // BINUNICODE
          const uint64_t n = uint_le(4);
          auto v = PickleValue::make(Kind::String);
          v->s = bytes(n);
          push(v);
          break;
        }
        case 'q': memo_[uint_le(1)] = top(); break;
        case 'r': memo_[uint_le(4)] = top(); break;
        case 'h': case 'j': {
          const uint64_t key = uint_le(op == 'h' ? 1 : 4);
          const auto it = memo_.find(key);
          if (it == memo_.end()) fail("memo key ", key, " was never stored");
          push(it->second);
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          const std::string module = line(), name = line();
          const std::string full = module + "." + name;
          if (!hooks_.allowed_globals.count(full)) fail("pickle global '", full, "' is not on the allow-list");
          auto g = PickleValue::make(Kind::Global);
          g->s = full;
          push(g);
          break;
        }
        case 'K': push_int(int64_t(uint_le(1))); break;
        case 'M': push_int(int64_t(uint_le(2))); break;
        case 'J': push_int(int64_t(int32_t(uint32_t(uint_le(4))))); break;
        case 0x8a: {  // LONG1: n-byte little-endian two's complement
          const uint64_t n = uint_le(1);
          if (n > 8) fail("LONG1 integer of ", n, " bytes does not fit in int64");
          const uint64_t raw = uint_le(int(n));
          int64_t v = int64_t(raw);
          if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) v = int64_t(raw | (~uint64_t(0) << (8 * n)));
          push_int(v);
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | u8();
          auto v = PickleValue::make(Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'N': push(PickleValue::make(Kind::None)); break;
        case 0x88: case 0x89: {
          auto v = PickleValue::make(Kind::Bool);
          v->i = op == 0x88;
          push(v);
          break;
        }
        case 'R': {  // REDUCE
          const PickleRef args = pop();
          const PickleRef callable = pop();
          if (callable->kind != Kind::Global || args->kind != Kind::Tuple)
            fail("REDUCE needs a global and an argument tuple, got ", pickle_kind_name(callable->kind), " and ",
                 pickle_kind_name(args->kind));
          if (!hooks_.reduce) fail("REDUCE is not allowed here");
          push(call_hook([&] { return hooks_.reduce(callable->s, args); }));
          break;
        }
        case 'Q': {  // BINPERSID
          const PickleRef pid = pop();
          if (!hooks_.persistent_load) fail("persistent ids are not allowed here");
          push(call_hook([&] { return hooks_.persistent_load(pid); }));
          break;
        }
        case 's': {
          const PickleRef value = pop(), key = pop();
          PickleValue* d = dict_target();
          adopt(d, key);
          adopt(d, value);
          d->entries.emplace_back(key, value);
          break;
        }
        case 'u': {
          std::vector<PickleRef> kv = pop_mark();
          if (kv.size() % 2) fail("SETITEMS with an odd number of values");
          PickleValue* d = dict_target();
          for (size_t k = 0; k < kv.size(); k += 2) {
            adopt(d, kv[k]);
            adopt(d, kv[k + 1]);
            d->entries.emplace_back(kv[k], kv[k + 1]);
          }
          break;
        }
        case 'a': {
          const PickleRef value = pop();
          PickleValue* l = list_target();
          adopt(l, value);
          l->items.push_back(value);
          break;
        }
        case 'e': {
          std::vector<PickleRef> values = pop_mark();
          PickleValue* l = list_target();
          for (const PickleRef& v : values) adopt(l, v);
          l->items.insert(l->items.end(), values.begin(), values.end());
          break;
        }
        case 'b': {  // BUILD: only a dict (an OrderedDict with attributes) may receive state, which is dropped
          pop();
          if (top()->kind != Kind::Dict) fail("BUILD on a ", pickle_kind_name(top()->kind), " is not allowed");
          break;
        }
        default: fail("pickle opcode ", detail::pickle_opcode_name(op), " is not allowed");
      }
    }
    fail("truncated pickle: the data ends without STOP");
  }

 private:
  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    BIMAMBA_THROW(FormatError, what_, ": ", std::forward<Args>(args)..., " (at byte ", op_pos_, ")");
  }

  // Runs a hook, adding the byte position to a FormatError it throws.
  template <class F>
  PickleRef call_hook(F&& f) const {
    try {
      PickleRef r = f();
      if (!r) fail("hook returned nothing");
      return r;
    } catch (const FormatError& e) {
      fail(e.what());
    }
  }

  uint8_t u8() {
    if (pos_ >= size_) fail("truncated pickle");
    return data_[pos_++];
  }
  uint64_t uint_le(int n) {
    if (size_ - pos_ < size_t(n)) fail("truncated pickle");
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | data_[pos_ + size_t(k)];
    pos_ += size_t(n);
    return v;
  }
  std::string bytes(uint64_t n) {
    if (size_ - pos_ < n) fail("truncated pickle: a string of ", n, " bytes runs past the end");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  std::string line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("truncated pickle: GLOBAL without a newline");
    const size_t n = size_t(static_cast<const uint8_t*>(nl) - (data_ + pos_));
    std::string s = bytes(n);
    ++pos_;
    return s;
  }

  // Records that `child` goes into `parent`: refuses a parent already inside a container (or the child
  // itself), which is what a cycle needs, and nesting past the depth limit.
  void adopt(PickleValue* parent, const PickleRef& child) const {
    if (parent->contained || parent == child.get())
      fail("a ", pickle_kind_name(parent->kind), " is filled after being placed in a container (a recursive structure)");
    if (child->depth + 1 > io_limits().max_pickle_depth)
      fail("values nested deeper than the limit of ", io_limits().max_pickle_depth, " (io_limits().max_pickle_depth)");
    parent->depth = std::max(parent->depth, child->depth + 1);
    child->contained = true;
  }

  void push(PickleRef v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t v) {
    auto r = PickleValue::make(PickleValue::Kind::Int);
    r->i = v;
    push(r);
  }
  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const PickleRef& top() const {
    if (stack_.empty()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> values(stack_.begin() + std::ptrdiff_t(mark), stack_.end());
    stack_.resize(mark);
    return values;
  }
  PickleValue* dict_target() const {
    if (top()->kind != PickleValue::Kind::Dict) fail("SETITEM(S) on a ", pickle_kind_name(top()->kind));
    return top().get();
  }
  PickleValue* list_target() const {
    if (top()->kind != PickleValue::Kind::List) fail("APPEND(S) on a ", pickle_kind_name(top()->kind));
    return top().get();
  }

  const uint8_t* data_;
  size_t size_;
  std::string what_;
  const PickleHooks& hooks_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
};

}  // namespace bimamba
