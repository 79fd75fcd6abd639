// The machinery of the CUDA CPU emulator (tools/cuda_emu/README.md), behind the shim headers:
//   fibers      one per thread of a block, with a hand-written context switch (x86-64; ucontext elsewhere); the
//               blocks of a grid run one after another, the threads of a block until each reaches a barrier;
//               the blocks of a cooperative launch in turns, each until it waits on an atomic load
//   barriers    __syncthreads over the block, warp collectives over the lanes of their mask; a block whose
//               threads cannot all go on (some exited or wait elsewhere), lanes that disagree on a collective, or
//               threads at different __syncthreads are reported (bimamba_emu::Error) with every thread's state
//   memory      every device allocation is its own mapping: poisoned with 0xFF (NaN) bytes, right-aligned against a
//               guard page, slack bytes checked after every kernel; shared memory is poisoned for every block
//   runtime     the CUDA runtime API subset of the shim, synchronous; H100-like device attributes
//   cuBLAS      the GEMMs of emu_cublas.hpp, checked as cuBLAS checks them, computed in double
// Options (environment): BIMAMBA_EMU_ORDER = alternate (default: forward in even blocks, reverse in odd ones) |
// forward | reverse | random: the order in which a block's threads run between barriers, so that a missing
// barrier shows up as a read of poison; BIMAMBA_EMU_SEED for random.
#include <cxxabi.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "shim/bimamba_emu.hpp"
#include "shim/emu_cublas.hpp"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace bimamba_emu::rt {

Now now;

namespace {

// ---- the emulated device: an H100 SXM -------------------------------------------------------------------
constexpr int kSMs = 132;
constexpr size_t kSmemDefault = 48 << 10;       // dynamic shared memory without cudaFuncSetAttribute
constexpr size_t kSmemOptin = 227 << 10;        // the most a block may opt in to
constexpr size_t kSmemPerSM = 228 << 10;
constexpr size_t kGlobalBytes = size_t(80) << 30;
constexpr size_t kAllocAlign = 256;             // cudaMalloc's alignment
constexpr size_t kFiberStack = 256 << 10;
const size_t kPage = size_t(sysconf(_SC_PAGESIZE));

std::string format_dim(uint3 v) {
  return "(" + std::to_string(v.x) + ", " + std::to_string(v.y) + ", " + std::to_string(v.z) + ")";
}
std::string hex(unsigned v) {
  char b[16];
  snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

// The demangled name of a kernel (without its parameter list), or its address.
std::string kernel_name(const void* kernel) {
  Dl_info info{};
  if (dladdr(kernel, &info) && info.dli_sname && info.dli_saddr == kernel) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), std::free);
    std::string name = status == 0 && d ? d.get() : info.dli_sname;
    if (name.rfind("void ", 0) == 0) name.erase(0, 5);
    int depth = 0;
    for (size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '<') ++depth;
      else if (name[i] == '>') --depth;
      else if (name[i] == '(' && depth == 0) return name.substr(0, i);
    }
    return name;
  }
  char b[32];
  snprintf(b, sizeof b, "kernel@%p", kernel);
  return b;
}

// ---- options --------------------------------------------------------------------------------------------
enum class Order { Alternate, Forward, Reverse, Random };
Order order_option() {
  static const Order order = [] {
    const char* v = std::getenv("BIMAMBA_EMU_ORDER");
    const std::string s = v ? v : "alternate";
    if (s == "forward") return Order::Forward;
    if (s == "reverse") return Order::Reverse;
    if (s == "random") return Order::Random;
    if (s != "alternate") fprintf(stderr, "bimamba_emu: unknown BIMAMBA_EMU_ORDER '%s', using alternate\n", s.c_str());
    return Order::Alternate;
  }();
  return order;
}

// ---- device memory ------------------------------------------------------------------------------------------
// Each allocation: [guard page][poisoned slack][user bytes][poisoned slack < 256][guard page], the user bytes
// ending kAllocAlign-aligned at the second guard.
struct Alloc {
  char* map;
  size_t map_len;
  char* user;
  size_t bytes;
  bool host;  // cudaMallocHost
};
std::map<uintptr_t, Alloc> allocs;  // by user address
size_t used_bytes = 0, peak_bytes = 0;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

void* allocate(size_t bytes, bool host) {
  const size_t usable = round_up(std::max<size_t>(bytes, 1), kAllocAlign), body = round_up(usable, kPage);
  const size_t len = body + 2 * kPage;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  char* map = static_cast<char*>(m);
  mprotect(map, kPage, PROT_NONE);
  mprotect(map + kPage + body, kPage, PROT_NONE);
  std::memset(map + kPage, 0xFF, body);  // NaN in every float / double: reads of unwritten memory show
  char* user = map + kPage + body - usable;
  allocs[uintptr_t(user)] = {map, len, user, bytes, host};
  used_bytes += bytes;
  peak_bytes = std::max(peak_bytes, used_bytes);
  return user;
}

const Alloc* find_alloc(const void* p) {
  auto it = allocs.upper_bound(uintptr_t(p));
  if (it == allocs.begin()) return nullptr;
  --it;
  const Alloc& a = it->second;
  return uintptr_t(p) <= uintptr_t(a.user) + a.bytes ? &a : nullptr;
}

// The first byte outside the user bytes (within kAllocAlign of them) that is no longer poison, or null.
const char* corrupted_slack(const Alloc& a) {
  const char* head = std::max(a.map + kPage, a.user - kAllocAlign);
  for (const char* p = head; p < a.user; ++p)
    if (static_cast<unsigned char>(*p) != 0xFF) return p;
  for (const char* p = a.user + a.bytes; p < a.user + round_up(std::max<size_t>(a.bytes, 1), kAllocAlign); ++p)
    if (static_cast<unsigned char>(*p) != 0xFF) return p;
  return nullptr;
}

std::string describe_write_outside(const Alloc& a, const char* p) {
  std::ostringstream o;
  o << "a write " << (p < a.user ? "before the start" : "past the end") << " of a device allocation of " << a.bytes
    << " bytes at " << static_cast<const void*>(a.user) << " (byte offset " << (p - a.user) << ")";
  return o.str();
}

// Throws when a kernel or call wrote into the slack of any allocation (the guard pages catch anything further).
void check_slack(const std::string& after) {
  for (auto& [address, a] : allocs)
    if (const char* p = corrupted_slack(a)) {
      const std::string what = describe_write_outside(a, p);
      std::memset(a.user + a.bytes, 0xFF, round_up(std::max<size_t>(a.bytes, 1), kAllocAlign) - a.bytes);
      std::memset(std::max(a.map + kPage, a.user - kAllocAlign), 0xFF,
                  a.user - std::max(a.map + kPage, a.user - kAllocAlign));
      throw Error(after + ": " + what);
    }
}

bool release(void* p) {
  auto it = allocs.find(uintptr_t(p));
  if (it == allocs.end()) return false;
  Alloc a = it->second;
  if (const char* bad = corrupted_slack(a)) {
    fprintf(stderr, "bimamba_emu: freeing memory that saw %s\n", describe_write_outside(a, bad).c_str());
    std::abort();
  }
  allocs.erase(it);
  used_bytes -= a.bytes;
  munmap(a.map, a.map_len);
  return true;
}

// Throws naming `what` when [p, p + bytes) is not inside one device allocation.
void require_device(const void* p, size_t bytes, const std::string& what) {
  if (device_range(p, bytes)) return;
  std::ostringstream o;
  o << what << ": [" << p << ", +" << bytes << " bytes) ";
  const Alloc* a = find_alloc(p);
  if (a)
    o << "runs past the end of its device allocation of " << a->bytes << " bytes at " << static_cast<void*>(a->user);
  else o << "is not device memory";
  throw Error(o.str());
}

// ---- fibers -----------------------------------------------------------------------------------------------
struct Fiber {
  enum State : uint8_t { Ready, AtBarrier, AtWarp, Done };
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  char* stack = nullptr;  // kFiberStack bytes above a guard page
  State state = Done;
  uint3 tid{};
  int linear = 0;
  const char* file = "";
  int line = 0;
  Collective kind = Collective::SyncWarp;
  unsigned mask = 0;
  int arg = 0, width = 32;
  size_t bytes = 0;
  bool spun = false;  // its turn ended at an atomic load of a cooperative launch (a wait on other blocks)
  bool fresh = false;  // since its last turn ended, an atomic load returned a value new to it at that address
  bool at_spin = false;  // its last turn ended at such a load (not at a barrier, a warp collective or its end)
  std::unordered_map<const void*, uint64_t> seen;  // the last value its atomic loads returned at each address
  struct PendingCopy {
    void* dst;
    unsigned char bytes[16];
    size_t n;
  };
  std::vector<PendingCopy> pending;  // its cp.async copies not waited for yet
  alignas(16) unsigned char in[16], out[16];
};

struct Block {
  const Launch* launch = nullptr;
  std::string name;
  int nthreads = 0, arrived = 0, done = 0;
  int fiber0 = 0;           // its threads are fibers[fiber0 ..]: one set per block of a cooperative launch
  std::vector<int> order;   // the order in which its threads run between barriers
  unsigned warp_arrived[32] = {};
  uint64_t serial = 0, spin_loads = 0;
  size_t static_bytes = 0;
  std::exception_ptr error;
  uint3 error_thread{};
  uint3 idx{};                                  // blockIdx
  std::vector<char> saved_dynamic;              // a cooperative block's shared memory while another one runs
  std::vector<std::vector<char>> saved_static;
};

std::vector<std::unique_ptr<Fiber>> fibers;
Fiber* current = nullptr;  // the fiber running now; null outside kernels
Block* block = nullptr;    // the block running now
uint64_t block_serial = 0;
std::map<const void*, uint64_t> static_shared_serial;  // static __shared__ arrays: last block that poisoned them
std::map<const void*, int> max_dynamic_smem;           // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
char* dyn_shared_end = nullptr;                        // the dynamic shared buffer ends at a guard page
char* dyn_shared_base = nullptr;
uint64_t fpu_state = 0;
std::vector<std::pair<void*, size_t>> launch_statics;  // the static __shared__ arrays the running launch declared

Fiber& fiber_of(int i) { return *fibers[size_t(block->fiber0 + i)]; }

#if defined(__x86_64__)
extern "C" void bimamba_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl bimamba_emu_switch
  .type bimamba_emu_switch, @function
bimamba_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size bimamba_emu_switch, .-bimamba_emu_switch
)");
void* scheduler_sp = nullptr;
void to_scheduler(Fiber* f) { bimamba_emu_switch(&f->sp, scheduler_sp); }
void to_fiber(Fiber* f) { bimamba_emu_switch(&scheduler_sp, f->sp); }
#else
ucontext_t scheduler_ctx;
void to_scheduler(Fiber* f) { swapcontext(&f->ctx, &scheduler_ctx); }
void to_fiber(Fiber* f) { swapcontext(&scheduler_ctx, &f->ctx); }
#endif

[[noreturn]] void fiber_main() {
  Fiber* f = current;
  try {
    block->launch->invoke(block->launch->data);
  } catch (...) {
    if (!block->error) {
      block->error = std::current_exception();
      block->error_thread = f->tid;
    }
  }
  land_async_copies();  // copies nobody waited for land in the end
  f->state = Fiber::Done;
  ++block->done;
  to_scheduler(f);
  std::abort();  // a finished fiber is never resumed
}

void start_fiber(Fiber& f) {
#if defined(__x86_64__)
  auto* sp = reinterpret_cast<uint64_t*>(f.stack + kFiberStack);
  *--sp = 0;                                        // fiber_main's return address: none
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);  // where bimamba_emu_switch returns to
  for (int i = 0; i < 6; ++i) *--sp = 0;            // rbp rbx r12 r13 r14 r15
  *--sp = fpu_state;                                // mxcsr, x87 control word
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = kFiberStack;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, reinterpret_cast<void (*)()>(&fiber_main), 0);
#endif
}

// The first 1024 fibers (a block's) get a stack each below a guard page. The further ones, for the blocks of a
// cooperative launch (up to 132 x 1024 threads), come in chunks of 256 stacks with one guard page per chunk: two
// mappings per fiber would pass the kernel's default limit of 65530 mappings a process.
void ensure_fibers(int n) {
  constexpr int kGuarded = 1024, kChunk = 256;
  while (int(fibers.size()) < n) {
    const bool guarded = fibers.size() < size_t(kGuarded);
    const int count = guarded ? 1 : kChunk;
    const size_t len = kPage + size_t(count) * kFiberStack;
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw Error("cannot map a fiber stack");
    mprotect(m, kPage, PROT_NONE);
    for (int i = 0; i < count; ++i) {
      auto f = std::make_unique<Fiber>();
      f->stack = static_cast<char*>(m) + kPage + size_t(i) * kFiberStack;
      fibers.push_back(std::move(f));
    }
  }
}

Fiber* require_fiber(const char* what) {
  if (!current) throw Error(std::string(what) + " called outside a kernel");
  return current;
}

const char* collective_name(Collective k) {
  switch (k) {
    case Collective::SyncWarp: return "__syncwarp";
    case Collective::Shfl: return "__shfl_sync";
    case Collective::ShflUp: return "__shfl_up_sync";
    case Collective::ShflDown: return "__shfl_down_sync";
    case Collective::ShflXor: return "__shfl_xor_sync";
    case Collective::Ballot: return "__ballot_sync";
    case Collective::Any: return "__any_sync";
    case Collective::All: return "__all_sync";
  }
  return "?";
}

bool same_site(const Fiber& a, const Fiber& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}
std::string site(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

// Every thread's state, grouped: why the block cannot go on.
std::string block_report() {
  std::map<std::string, std::vector<uint3>> groups;
  for (int i = 0; i < block->nthreads; ++i) {
    const Fiber& f = fiber_of(i);
    std::string key;
    if (f.state == Fiber::Done) key = "exited";
    else if (f.state == Fiber::AtBarrier) key = "wait at __syncthreads() at " + site(f);
    else if (f.state == Fiber::AtWarp)
      key = "(warp " + std::to_string(f.linear >> 5) + ") wait at " + collective_name(f.kind) + "(mask " + hex(f.mask) +
            ") at " + site(f);
    else key = "ready";
    groups[key].push_back(f.tid);
  }
  std::ostringstream o;
  for (auto& [key, tids] : groups) {
    o << "\n    " << tids.size() << " thread" << (tids.size() > 1 ? "s " : " ") << key << ": threadIdx";
    for (size_t i = 0; i < tids.size() && i < 4; ++i) o << " " << format_dim(tids[i]);
    if (tids.size() > 4) o << " ...";
  }
  return o.str();
}

std::string where() {
  return "kernel " + block->name + ", block " + format_dim(now.block_idx);
}

// Starts the block's threads and picks the order in which they run between barriers.
void start_block() {
  const int n = block->nthreads;
  for (int i = 0; i < n; ++i) {
    Fiber& f = fiber_of(i);
    f.state = Fiber::Ready;
    f.linear = i;
    f.fresh = false;
    f.seen.clear();
    const unsigned bx = now.block_dim.x, by = now.block_dim.y;
    f.tid = {unsigned(i) % bx, unsigned(i) / bx % by, unsigned(i) / (bx * by)};
    start_fiber(f);
  }
  std::vector<int>& order = block->order;
  order.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  const Order opt = order_option();
  const bool reverse = opt == Order::Reverse || (opt == Order::Alternate && (block->serial & 1));
  if (reverse) std::reverse(order.begin(), order.end());
  if (opt == Order::Random) {
    static std::mt19937 rng(std::getenv("BIMAMBA_EMU_SEED") ? unsigned(std::atoi(std::getenv("BIMAMBA_EMU_SEED")))
                                                            : 1u);
    std::shuffle(order.begin(), order.end(), rng);
  }
}

// Runs the block's threads in turn until every one has ended, an error, or (cooperative launches) a round in which
// every thread that ran only waited on an atomic load that returned nothing new to it: then it waits for another
// block. Returns whether any thread got further than such a load.
bool resume_block() {
  constexpr int kPassesAfterAStaleSpin = 64;  // a warp-wide poll keeps a lane reaching its vote in every pass
  const int n = block->nthreads;
  bool progress = false, news = false;
  int stale_passes = 0;
  for (;;) {
    bool ran = false, moved = false, stale = false;
    for (int i : block->order) {
      Fiber* f = &fiber_of(i);
      if (f->state != Fiber::Ready) continue;
      now.thread_idx = f->tid;
      current = f;
      f->spun = false;
      f->at_spin = false;
      to_fiber(f);
      current = nullptr;
      ran = true;
      moved = moved || !f->spun;
      stale = stale || f->spun;
      news = news || (f->at_spin && !f->spun) || f->state == Fiber::AtBarrier || f->state == Fiber::Done;
      if (block->error) return progress || news;
    }
    if (stale_passes == 0 && !stale) progress = progress || moved;
    if (block->done == n || (ran && !moved)) return progress || news;
    if (!ran) {
      block->error = std::make_exception_ptr(
          Error(where() + ": the block's threads cannot all go on (a divergent barrier or warp collective):" +
                block_report()));
      return progress;
    }
    // Once a thread waits on another block, the turn ends after a bounded number of passes; from then on what
    // counts as progress is a load that saw something new, a block barrier reached or a thread ended (not a warp
    // collective reached: a poll's lanes reach their vote in every pass).
    if ((stale || stale_passes > 0) && ++stale_passes > kPassesAfterAStaleSpin) return progress || news;
  }
}

void run_block() {
  start_block();
  resume_block();
}

void release_block_barrier() {
  for (int i = 0; i < block->nthreads; ++i)
    if (fiber_of(i).state == Fiber::AtBarrier) fiber_of(i).state = Fiber::Ready;
  block->arrived = 0;
}

// The last lane of `mask` has arrived: check that all agree, compute every lane's result, release them.
void complete_collective(Fiber* f, int warp) {
  const unsigned mask = f->mask;
  Fiber* lanes[32] = {};
  for (int l = 0; l < 32; ++l)
    if (mask >> l & 1) lanes[l] = &fiber_of(warp * 32 + l);
  const bool shuffle = f->kind != Collective::SyncWarp && f->kind != Collective::Ballot && f->kind != Collective::Any &&
                       f->kind != Collective::All;
  for (int l = 0; l < 32; ++l) {
    Fiber* g = lanes[l];
    if (!g || g == f) continue;
    if (g->kind != f->kind || g->mask != f->mask || (shuffle && (g->width != f->width || g->bytes != f->bytes)) ||
        (f->kind != Collective::SyncWarp && !same_site(*g, *f)))
      throw Error(where() + ", warp " + std::to_string(warp) + ": lanes disagree on a warp collective: lane " +
                  std::to_string(f->linear & 31) + " calls " + collective_name(f->kind) + "(mask " + hex(f->mask) +
                  ") at " + site(*f) + ", lane " + std::to_string(l) + " " + collective_name(g->kind) + "(mask " +
                  hex(g->mask) + ") at " + site(*g));
  }
  unsigned votes = 0;
  for (int l = 0; l < 32; ++l)
    if (lanes[l] && (f->kind == Collective::Ballot || f->kind == Collective::Any || f->kind == Collective::All)) {
      int p;
      std::memcpy(&p, lanes[l]->in, sizeof p);
      if (p) votes |= 1u << l;
    }
  for (int l = 0; l < 32; ++l) {
    Fiber* g = lanes[l];
    if (!g) continue;
    const int w = g->width, seg = l & ~(w - 1);
    int src = l;
    switch (g->kind) {
      case Collective::Shfl: src = seg + (((g->arg % w) + w) % w); break;
      case Collective::ShflUp: src = (l & (w - 1)) >= g->arg ? l - g->arg : l; break;
      case Collective::ShflDown: src = (l & (w - 1)) + g->arg < w ? l + g->arg : l; break;
      case Collective::ShflXor: src = (l ^ g->arg) > (l | (w - 1)) ? l : l ^ g->arg; break;
      case Collective::Ballot: std::memcpy(g->out, &votes, sizeof votes); break;
      case Collective::Any: { const unsigned r = votes != 0; std::memcpy(g->out, &r, sizeof r); } break;
      case Collective::All: { const unsigned r = votes == mask; std::memcpy(g->out, &r, sizeof r); } break;
      case Collective::SyncWarp: break;
    }
    if (shuffle) {
      if (src >= 0 && src < 32 && lanes[src]) std::memcpy(g->out, lanes[src]->in, g->bytes);
      else std::memset(g->out, 0xFF, g->bytes);  // the source lane does not take part: undefined, so poison
    }
    if (g != f) g->state = Fiber::Ready;
  }
  block->warp_arrived[warp] &= ~mask;
}

// ---- SIGSEGV: name what was touched -------------------------------------------------------------------------
void on_segv(int sig, siginfo_t* info, void*) {
  const uintptr_t a = uintptr_t(info->si_addr);
  char msg[2048];
  int len = snprintf(msg, sizeof msg, "\nbimamba_emu: segmentation fault at address %p", info->si_addr);
  for (auto& [user, al] : allocs)
    if (a >= uintptr_t(al.map) && a < uintptr_t(al.map) + al.map_len) {
      len += snprintf(msg + len, sizeof msg - size_t(len),
                      ": the guard page %s the device allocation of %zu bytes at %p (byte offset %lld)",
                      a < uintptr_t(al.user) ? "before" : "after", al.bytes, static_cast<void*>(al.user),
                      (long long)(a - uintptr_t(al.user)));
  }
  if (dyn_shared_end && a >= uintptr_t(dyn_shared_end) && a < uintptr_t(dyn_shared_end) + kPage)
    len +=
        snprintf(msg + len, sizeof msg - size_t(len), ": past the end of the block's dynamic shared memory (%zu bytes)",
                 size_t(dyn_shared_end - dyn_shared_base));
  for (auto& f : fibers)
    if (a >= uintptr_t(f->stack) - kPage && a < uintptr_t(f->stack))
      len += snprintf(msg + len, sizeof msg - size_t(len), ": a fiber's stack overflowed (%zu KiB)", kFiberStack >> 10);
  if (current && block)
    len += snprintf(msg + len, sizeof msg - size_t(len), "\n  in kernel %s, block (%u, %u, %u), thread (%u, %u, %u)",
                    block->name.c_str(), now.block_idx.x, now.block_idx.y, now.block_idx.z, now.thread_idx.x,
                    now.thread_idx.y, now.thread_idx.z);
  len += snprintf(msg + len, sizeof msg - size_t(len), "\n");
  (void)!write(2, msg, size_t(len));
  signal(sig, SIG_DFL);  // returning re-runs the access, which now ends the process
}

struct Setup {
  Setup() {
    static char alt[1 << 16];
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, nullptr);
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    uint32_t mxcsr = 0x1f80;
    uint16_t fpcw = 0x037f;
#if defined(__x86_64__)
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpcw));
#endif
    fpu_state = uint64_t(mxcsr) | uint64_t(fpcw) << 32;
    // The dynamic shared memory: kSmemOptin bytes (and a page of slack) below a guard page.
    const size_t len = round_up(kSmemOptin, kPage) + 2 * kPage;
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    dyn_shared_end = static_cast<char*>(m) + len - kPage;
    mprotect(dyn_shared_end, kPage, PROT_NONE);
  }
} setup;

cudaError_t last_error = cudaSuccess;
std::set<const void*> streams;

// What ran: one line at exit, and launches per kernel with BIMAMBA_EMU_STATS=1.
struct Stats {
  struct Kernel {
    uint64_t launches = 0, blocks = 0, threads = 0;
  };
  std::map<std::string, Kernel> kernels;
  uint64_t barriers = 0, collectives = 0, gemms = 0;
  ~Stats() {
    Kernel total;
    for (auto& [name, k] : kernels) total.launches += k.launches, total.blocks += k.blocks, total.threads += k.threads;
    fprintf(stderr, "bimamba_emu: %llu launches of %zu kernels, %llu blocks, %llu threads, %llu __syncthreads, "
            "%llu warp collectives, %llu cuBLAS GEMM calls\n", (unsigned long long)total.launches, kernels.size(),
            (unsigned long long)total.blocks, (unsigned long long)total.threads, (unsigned long long)barriers,
            (unsigned long long)collectives, (unsigned long long)gemms);
    const char* v = std::getenv("BIMAMBA_EMU_STATS");
    if (v && *v == '1')
      for (auto& [name, k] : kernels)
        fprintf(stderr, "  %8llu launches %10llu blocks  %s\n", (unsigned long long)k.launches,
                (unsigned long long)k.blocks, name.c_str());
  }
} stats;

bool valid_stream(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || streams.count(s);
}

}  // namespace

// ---- kernels ------------------------------------------------------------------------------------------------
void set_last_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
}

// Throws the error of the block (if any) out of the launch, naming the kernel, the block and the thread.
void throw_block_error(const Block& B) {
  if (!B.error) return;
  std::string message;
  try {
    std::rethrow_exception(B.error);
  } catch (const Error& e) {
    message = e.what();
    if (message.rfind("kernel ", 0) != 0) message = where() + ", thread " + format_dim(B.error_thread) + ": " + message;
  } catch (const std::exception& e) {
    message = where() + ", thread " + format_dim(B.error_thread) + ": exception " + e.what();
  }
  block = nullptr;
  current = nullptr;
  throw Error(message);
}

cudaError_t run_kernel(const Launch& L) {
  if (current) throw Error("a kernel launched another kernel: dynamic parallelism is not emulated");
  if (!valid_stream(L.stream)) return cudaErrorInvalidResourceHandle;
  const dim3 g = L.grid, b = L.block;
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
    return cudaErrorInvalidConfiguration;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      uint64_t(b.x) * b.y * b.z > 1024)
    return cudaErrorInvalidConfiguration;
  auto attr = max_dynamic_smem.find(L.kernel);
  const size_t smem_limit =
      attr == max_dynamic_smem.end() ? kSmemDefault : std::max<size_t>(kSmemDefault, size_t(attr->second));
  if (L.smem > smem_limit) return cudaErrorInvalidValue;
  const int nthreads = int(b.x * b.y * b.z);
  const uint64_t blocks = uint64_t(g.x) * g.y * g.z;
  if (L.cooperative && blocks > uint64_t(kSMs) * uint64_t(std::max(1, 2048 / nthreads)))
    return cudaErrorCooperativeLaunchTooLarge;

  ensure_fibers(nthreads * int(L.cooperative ? blocks : 1));
  const std::string name = kernel_name(L.kernel);
  now.grid_dim = g;
  now.block_dim = b;
  const size_t dynamic_bytes = round_up(L.smem, 16);
  dyn_shared_base = dyn_shared_end - dynamic_bytes;
  char* poison_from = std::max(dyn_shared_end - round_up(kSmemOptin, kPage) - kPage, dyn_shared_base - kPage);
  launch_statics.clear();
  auto setup = [&](Block& B, uint64_t i) {
    B.launch = &L;
    B.name = name;
    B.nthreads = nthreads;
    B.idx = {unsigned(i % g.x), unsigned(i / g.x % g.y), unsigned(i / (uint64_t(g.x) * g.y))};
    B.serial = ++block_serial;
    B.arrived = B.done = 0;
    B.spin_loads = 0;
    B.static_bytes = 0;
    std::fill(std::begin(B.warp_arrived), std::end(B.warp_arrived), 0u);
  };
  // After a block has ended: the shared-memory checks of a launch, then any error out of the launch.
  auto finish = [&](Block& B) {
    if (!B.error && attr == max_dynamic_smem.end() && B.static_bytes + L.smem > kSmemDefault)
      B.error = std::make_exception_ptr(Error(where() + ": " + std::to_string(B.static_bytes) + " bytes of static and " +
                                              std::to_string(L.smem) + " of dynamic shared memory, above the 48 KiB " +
                                              "of a kernel without cudaFuncAttributeMaxDynamicSharedMemorySize"));
    if (!B.error && B.static_bytes > kSmemDefault)
      B.error = std::make_exception_ptr(Error(where() + ": " + std::to_string(B.static_bytes) +
                                              " bytes of static shared memory, above CUDA's 48 KiB"));
    if (!B.error && B.static_bytes + L.smem > kSmemOptin)
      B.error = std::make_exception_ptr(
          Error(where() + ": " + std::to_string(B.static_bytes) + " bytes of static and " + std::to_string(L.smem) +
                " of dynamic shared memory, above the " + std::to_string(kSmemOptin) + " a block may have"));
    throw_block_error(B);
  };
  if (!L.cooperative) {  // the blocks one after another
    Block B;
    block = &B;
    for (uint64_t i = 0; i < blocks; ++i) {
      setup(B, i);
      now.block_idx = B.idx;
      std::memset(poison_from, 0xFF, size_t(dyn_shared_end - poison_from));
      run_block();
      finish(B);
    }
  } else {  // every block resident: each runs until it waits on another, then the next one (shared memory swapped)
    std::vector<Block> all(blocks);
    for (uint64_t i = 0; i < blocks; ++i) setup(all[i], i), all[i].fiber0 = int(i) * nthreads;
    std::vector<bool> ended(blocks, false);
    for (bool left = true; left;) {
      bool progress = false;
      left = false;
      for (uint64_t i = 0; i < blocks; ++i) {
        if (ended[i]) continue;
        Block& B = all[i];
        block = &B;
        now.block_idx = B.idx;
        if (B.order.empty()) {
          std::memset(poison_from, 0xFF, size_t(dyn_shared_end - poison_from));
          start_block();
        } else {
          std::memcpy(dyn_shared_base, B.saved_dynamic.data(), dynamic_bytes);
          for (size_t k = 0; k < launch_statics.size(); ++k) {
            const auto [p, bytes] = launch_statics[k];
            if (k < B.saved_static.size()) std::memcpy(p, B.saved_static[k].data(), bytes);
            else std::memset(p, 0xFF, bytes);
            static_shared_serial[p] = B.serial;
          }
        }
        progress = resume_block() || progress;
        if (B.done == nthreads || B.error) {
          ended[i] = true;
          finish(B);
          continue;
        }
        left = true;
        B.saved_dynamic.assign(dyn_shared_base, dyn_shared_base + dynamic_bytes);
        B.saved_static.resize(launch_statics.size());
        for (size_t k = 0; k < launch_statics.size(); ++k)
          B.saved_static[k].assign(static_cast<char*>(launch_statics[k].first),
                                   static_cast<char*>(launch_statics[k].first) + launch_statics[k].second);
      }
      if (left && !progress) {
        block = nullptr;
        throw Error("kernel " + name + ": every block that has not ended waits on an atomic load that no block will "
                    "change (a grid-wide wait that never ends)");
      }
    }
  }
  block = nullptr;
  Stats::Kernel& k = stats.kernels[name];
  ++k.launches;
  k.blocks += blocks;
  k.threads += blocks * uint64_t(nthreads);
  check_slack("after kernel " + name);
  return cudaSuccess;
}

void check_kernel_pointer(const void* p, const void* kernel, int index) {
  if (p && !find_alloc(p))
    throw Error("launch of kernel " + kernel_name(kernel) + ": parameter " + std::to_string(index) +
                " points to memory that is not device memory");
}

void syncthreads(const char* file, int line) {
  Fiber* f = require_fiber("__syncthreads()");
  f->file = file;
  f->line = line;
  ++stats.barriers;
  if (++block->arrived == block->nthreads) {
    for (int i = 0; i < block->nthreads; ++i) {
      const Fiber& g = fiber_of(i);
      if (&g != f && !same_site(g, *f))
        throw Error(where() + ": threads wait at different __syncthreads(): thread " + format_dim(f->tid) + " at " +
                    site(*f) + ", thread " + format_dim(g.tid) + " at " + site(g));
    }
    release_block_barrier();
    return;
  }
  f->state = Fiber::AtBarrier;
  to_scheduler(f);
}

void warp_collective(Collective kind, unsigned mask, int arg, int width, const void* in, void* out, size_t bytes,
                     const char* file, int line) {
  Fiber* f = require_fiber(collective_name(kind));
  const int lane = f->linear & 31, warp = f->linear >> 5;
  f->file = file;
  f->line = line;
  if (!(mask >> lane & 1))
    throw Error(where() + ": lane " + std::to_string(lane) + " calls " + collective_name(kind) + " at " + site(*f) +
                " with mask " + hex(mask) + ", which does not include it");
  if (width < 1 || width > 32 || (width & (width - 1)))
    throw Error(where() + ": " + collective_name(kind) + " at " + site(*f) + " with width " + std::to_string(width));
  ++stats.collectives;
  f->kind = kind;
  f->mask = mask;
  f->arg = arg;
  f->width = width;
  f->bytes = bytes;
  std::memcpy(f->in, in, bytes);
  unsigned& arrived = block->warp_arrived[warp];
  arrived |= 1u << lane;
  if ((arrived & mask) == mask) {
    complete_collective(f, warp);
  } else {
    f->state = Fiber::AtWarp;
    to_scheduler(f);
  }
  std::memcpy(out, f->out, bytes);
}

unsigned active_mask() {
  Fiber* f = require_fiber("__activemask()");
  const int warp = f->linear >> 5;
  unsigned m = 0;
  for (int l = 0; l < 32 && warp * 32 + l < block->nthreads; ++l)
    if (fiber_of(warp * 32 + l).state != Fiber::Done) m |= 1u << l;
  return m;
}

void* dynamic_shared() {
  require_fiber("extern __shared__");
  return dyn_shared_base;
}

void static_shared(void* p, size_t bytes) {
  require_fiber("__shared__");
  uint64_t& serial = static_shared_serial[p];
  if (serial == block->serial) return;
  if (std::none_of(launch_statics.begin(), launch_statics.end(), [p](const auto& s) { return s.first == p; }))
    launch_statics.emplace_back(p, bytes);
  serial = block->serial;
  std::memset(p, 0xFF, bytes);
  block->static_bytes += bytes;
}

void check_launch_bounds(unsigned max_threads) {
  const unsigned n = now.block_dim.x * now.block_dim.y * now.block_dim.z;
  if (n > max_threads)
    throw Error(where() + ": launched with " + std::to_string(n) + " threads per block, above its __launch_bounds__(" +
                std::to_string(max_threads) + "): CUDA refuses this launch");
}

void inline_asm(const char* ptx) {
  std::string s(ptx);
  s.erase(0, s.find_first_not_of(" \t\n{"));
  for (const char* hint : {"prefetch.", "griddepcontrol.", "membar.", "fence."})
    if (s.rfind(hint, 0) == 0) return;  // hints and fences: nothing to do when one thread runs at a time
  throw Error("inline PTX is not emulated: \"" + std::string(ptx) + "\"");
}

void trap(const char* what) {
  throw Error(std::string(what) + " in device code (the emulator defines no __CUDA_ARCH__: this may be the fallback "
              "branch of code written for the GPU only, such as inline PTX)");
}

void async_copy(void* dst, const void* src, size_t bytes) {
  Fiber* f = require_fiber("cp.async");
  if (bytes > sizeof(Fiber::PendingCopy::bytes))
    throw Error(where() + ": a cp.async of " + std::to_string(bytes) + " bytes (at most 16)");
  Fiber::PendingCopy c{dst, {}, bytes};
  std::memcpy(c.bytes, src, bytes);
  std::memset(dst, 0xFF, bytes);
  f->pending.push_back(c);
}

void land_async_copies() {
  Fiber* f = require_fiber("cp.async.wait_all");
  for (const Fiber::PendingCopy& c : f->pending) std::memcpy(c.dst, c.bytes, c.n);
  f->pending.clear();
}

void count_spin_load() {
  if (block && current && block->launch->cooperative) {  // let the other blocks run: this one may wait on them
    current->spun = !current->fresh;
    current->at_spin = true;
    current->fresh = false;
    to_scheduler(current);
    return;
  }
  if (block && ++block->spin_loads > (uint64_t(1) << 24))
    throw Error(where() + ": 2^24 atomic loads in one block: it seems to wait for another block, which never runs "
                "while it does (grid-wide synchronization is not emulated)");
}

void spin_load_seen(const void* p, uint64_t value) {
  if (!block || !current || !block->launch->cooperative) return;
  const auto [at, added] = current->seen.emplace(p, value);
  if (added || at->second != value) at->second = value, current->fresh = true;
}

bool device_range(const void* p, size_t bytes) {
  const Alloc* a = find_alloc(p);
  return a && uintptr_t(p) + bytes <= uintptr_t(a->user) + a->bytes;
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || size_t(value) > kSmemOptin) return cudaErrorInvalidValue;
    max_dynamic_smem[kernel] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
    return value >= -1 && value <= 100 ? cudaSuccess : cudaErrorInvalidValue;
  return cudaErrorInvalidValue;
}

cudaError_t occupancy(int* blocks, const void*, int block_size, size_t smem) {
  if (!blocks || block_size <= 0 || block_size > 1024) return cudaErrorInvalidValue;
  int n = std::min(32, 2048 / block_size);
  if (smem) n = std::min<int>(n, int(kSmemPerSM / smem));
  *blocks = n;
  return cudaSuccess;
}

}  // namespace bimamba_emu::rt

// ---- runtime API ----------------------------------------------------------------------------------------------
using namespace bimamba_emu;
using namespace bimamba_emu::rt;

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  double ms = -1;
};
struct CUmemPoolHandle_st {};

namespace {
CUmemPoolHandle_st default_pool;
std::set<const void*> events;

// Throws when a device side of a copy is outside its allocation or the kind names the wrong side.
cudaError_t check_copy(void* dst, size_t dst_bytes, const void* src, size_t src_bytes, cudaMemcpyKind kind,
                       const char* fn) {
  if (unsigned(kind) > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  const bool to_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool from_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool any = kind == cudaMemcpyDefault;
  if (to_dev || (any && find_alloc(dst))) require_device(dst, dst_bytes, std::string(fn) + " destination");
  else if (find_alloc(dst)) throw Error(std::string(fn) + ": the destination is device memory, the kind says host");
  if (from_dev || (any && find_alloc(src))) require_device(src, src_bytes, std::string(fn) + " source");
  else if (find_alloc(src)) throw Error(std::string(fn) + ": the source is device memory, the kind says host");
  return cudaSuccess;
}
}  // namespace

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }
cudaError_t cudaGetLastError() { return std::exchange(rt::last_error, cudaSuccess); }
cudaError_t cudaPeekAtLastError() { return rt::last_error; }
cudaError_t cudaGetDeviceCount(int* count) { return *count = 1, cudaSuccess; }
cudaError_t cudaGetDevice(int* device) { return *device = 0, cudaSuccess; }
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(kSmemDefault); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = kSMs; break;
    case cudaDevAttrL2CacheSize: *value = 50 << 20; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrCooperativeLaunch: *value = 1; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(kSmemOptin); break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(kSmemPerSM); break;
    case cudaDevAttrMemoryPoolsSupported: *value = 1; break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "bimamba_emu (CPU emulation of an H100)");
  p->totalGlobalMem = kGlobalBytes;
  p->sharedMemPerBlock = kSmemDefault;
  p->sharedMemPerBlockOptin = kSmemOptin;
  p->sharedMemPerMultiprocessor = kSmemPerSM;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = kSMs;
  p->l2CacheSize = 50 << 20;
  p->maxThreadsPerMultiProcessor = 2048;
  p->cooperativeLaunch = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = kGlobalBytes;
  *free_bytes = kGlobalBytes - std::min(kGlobalBytes, used_bytes);
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return cudaErrorInvalidValue;
  *p = allocate(bytes, false);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) { return !p || release(p) ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
  return valid_stream(s) ? cudaMalloc(p, bytes) : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  return valid_stream(s) ? cudaFree(p) : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = allocate(bytes, true);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (!bytes) return unsigned(kind) > cudaMemcpyDefault ? cudaErrorInvalidMemcpyDirection : cudaSuccess;
  if (cudaError_t e = check_copy(dst, bytes, src, bytes, kind, "cudaMemcpy")) return e;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  return valid_stream(s) ? cudaMemcpy(dst, src, bytes, kind) : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
  if (width == 0 || height == 0) return cudaSuccess;
  if (cudaError_t e =
          check_copy(dst, dpitch * (height - 1) + width, src, spitch * (height - 1) + width, kind, "cudaMemcpy2D"))
    return e;
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s) {
  return valid_stream(s) ? cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind) : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (!bytes) return cudaSuccess;
  require_device(p, bytes, "cudaMemset");
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  return valid_stream(s) ? cudaMemset(p, value, bytes) : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  *pool = &default_pool;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != &default_pool || !value) return cudaErrorInvalidValue;
  if (attr == cudaMemPoolAttrUsedMemHigh || attr == cudaMemPoolAttrReservedMemHigh) peak_bytes = used_bytes;
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != &default_pool || !value) return cudaErrorInvalidValue;
  auto* v = static_cast<unsigned long long*>(value);
  switch (attr) {
    case cudaMemPoolAttrUsedMemCurrent: case cudaMemPoolAttrReservedMemCurrent: *v = used_bytes; break;
    case cudaMemPoolAttrUsedMemHigh: case cudaMemPoolAttrReservedMemHigh: *v = peak_bytes; break;
    case cudaMemPoolAttrReleaseThreshold: *v = ~0ull; break;
    default: *static_cast<int*>(value) = 0; break;
  }
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new CUstream_st{flags};
  streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!streams.erase(s)) return cudaErrorInvalidResourceHandle;
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return valid_stream(s) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaStreamGetFlags(cudaStream_t s, unsigned* flags) {
  if (!valid_stream(s)) return cudaErrorInvalidResourceHandle;
  *flags = streams.count(s) ? s->flags : 0;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = cudaStreamCaptureStatusNone;
  return valid_stream(s) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
// Graphs are not emulated: capture fails, as on a stream that cannot be captured.
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { return cudaErrorStreamCaptureUnsupported; }
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t*) { return cudaErrorStreamCaptureUnsupported; }
cudaError_t cudaGraphInstantiate(cudaGraphExec_t*, cudaGraph_t, unsigned long long) { return cudaErrorNotSupported; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { return cudaErrorNotSupported; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t) { return cudaErrorNotSupported; }
cudaError_t cudaGraphDestroy(cudaGraph_t) { return cudaErrorNotSupported; }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  return valid_stream(s) && events.count(e) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
// Events and cuBLAS handles are objects of their own, registered so that a stale or foreign handle is refused.
template <class T>
static void register_handle(std::set<const void*>& live, T** out) {
  *out = new T;
  live.insert(*out);
}
template <class T>
static bool unregister_handle(std::set<const void*>& live, T* h) {
  if (!live.erase(h)) return false;
  delete h;
  return true;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  register_handle(events, e);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  return unregister_handle(events, e) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!events.count(e) || !valid_stream(s)) return cudaErrorInvalidResourceHandle;
  e->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return events.count(e) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!events.count(start) || !events.count(end) || start->ms < 0 || end->ms < 0) return cudaErrorInvalidResourceHandle;
  *ms = float(end->ms - start->ms);
  return cudaSuccess;
}

// ---- cuBLAS ---------------------------------------------------------------------------------------------------
struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

namespace {
std::set<const void*> handles;

size_t type_size(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_64F: return 8;
    case CUDA_R_32F: case CUDA_R_32I: return 4;
    case CUDA_R_16F: case CUDA_R_16BF: return 2;
    case CUDA_R_8I: return 1;
  }
  return 0;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  if (e) return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
  const float v = float(m) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}
uint16_t float_to_half(float f) {  // round to nearest even via the hardware-free path: scale into half's grid
  if (std::isnan(f)) return 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  float a = std::fabs(f);
  if (a >= 65520.0f) return sign | 0x7c00;
  if (a < 6.103515625e-05f) return sign | uint16_t(std::nearbyint(a / 5.9604644775390625e-8f));  // subnormal
  int e;
  const float m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  const float q = std::nearbyint(std::ldexp(m, 11));  // 11 significant bits
  const uint32_t bits =
      uint32_t(q) == 2048 ? (uint32_t(e + 15) << 10) : (uint32_t(e + 14) << 10) | (uint32_t(q) - 1024);
  return sign | uint16_t(bits);
}

double load(const void* p, cudaDataType_t t, size_t i) {
  switch (t) {
    case CUDA_R_32F: return static_cast<const float*>(p)[i];
    case CUDA_R_64F: return static_cast<const double*>(p)[i];
    case CUDA_R_16BF: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case CUDA_R_16F: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case CUDA_R_8I: return static_cast<const int8_t*>(p)[i];
    case CUDA_R_32I: return static_cast<const int32_t*>(p)[i];
  }
  return 0;
}
void store(void* p, cudaDataType_t t, size_t i, double v) {
  switch (t) {
    case CUDA_R_32F: static_cast<float*>(p)[i] = float(v); break;
    case CUDA_R_64F: static_cast<double*>(p)[i] = v; break;
    case CUDA_R_16BF: static_cast<uint16_t*>(p)[i] = float_to_bf16_rn(float(v)); break;
    case CUDA_R_16F: static_cast<uint16_t*>(p)[i] = float_to_half(float(v)); break;
    case CUDA_R_32I: static_cast<int32_t*>(p)[i] = int32_t(v); break;
    case CUDA_R_8I: break;
  }
}

float round_tf32(float x) {  // 10 mantissa bits, to nearest (ties away), as cvt.rna.tf32.f32
  if (!std::isfinite(x)) return x;
  return __uint_as_float((__float_as_uint(x) + 0x1000u) & 0xffffe000u);
}

enum class Rounding { None, Tf32, Bf16, Fp16 };

// The (A, B, C) types and compute type cublasGemmEx accepts (a subset of cuBLAS's table), and the rounding of
// fp32 operands that the compute type implies.
bool supported(cudaDataType_t a, cudaDataType_t b, cudaDataType_t c, cublasComputeType_t compute, Rounding& r) {
  r = Rounding::None;
  if (a != b) return false;
  switch (compute) {
    case CUBLAS_COMPUTE_32F: case CUBLAS_COMPUTE_32F_PEDANTIC:
      return (a == CUDA_R_32F && c == CUDA_R_32F) ||
             ((a == CUDA_R_16BF || a == CUDA_R_16F) && (c == a || c == CUDA_R_32F)) ||
             (a == CUDA_R_8I && c == CUDA_R_32F);
    case CUBLAS_COMPUTE_32F_FAST_TF32: r = Rounding::Tf32; return a == CUDA_R_32F && c == CUDA_R_32F;
    case CUBLAS_COMPUTE_32F_FAST_16BF: r = Rounding::Bf16; return a == CUDA_R_32F && c == CUDA_R_32F;
    case CUBLAS_COMPUTE_32F_FAST_16F: r = Rounding::Fp16; return a == CUDA_R_32F && c == CUDA_R_32F;
    case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC: return a == CUDA_R_64F && c == CUDA_R_64F;
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: return a == CUDA_R_16F && c == CUDA_R_16F;
    case CUBLAS_COMPUTE_32I: return a == CUDA_R_8I && c == CUDA_R_32I;
  }
  return false;
}

double rounded(double v, cudaDataType_t t, Rounding r) {
  if (t != CUDA_R_32F) return v;
  switch (r) {
    case Rounding::None: return v;
    case Rounding::Tf32: return round_tf32(float(v));
    case Rounding::Bf16: return bf16_to_float(float_to_bf16_rn(float(v)));
    case Rounding::Fp16: return half_to_float(float_to_half(float(v)));
  }
  return v;
}

struct Gemm {
  const char* fn;
  cublasHandle_t handle;
  cublasOperation_t op_a, op_b;
  int m, n, k;
  const void* alpha;
  cudaDataType_t type_a;
  int lda;
  cudaDataType_t type_b;
  int ldb;
  const void* beta;
  cudaDataType_t type_c;
  int ldc;
  int batch;
  cublasComputeType_t compute;
  int algo;
};

// Checks as cuBLAS, then for each i < batch: C_i = alpha op(A_i) op(B_i) + beta C_i, accumulated in double.
template <class GetA, class GetB, class GetC>
cublasStatus_t gemm(const Gemm& g, GetA a_of, GetB b_of, GetC c_of, const void* const* ptr_arrays[3] = nullptr) {
  if (!g.handle || !handles.count(g.handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool op_ok = unsigned(g.op_a) <= 2 && unsigned(g.op_b) <= 2;
  const int64_t a_rows = g.op_a == CUBLAS_OP_N ? g.m : g.k, b_rows = g.op_b == CUBLAS_OP_N ? g.k : g.n;
  if (!op_ok || g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0 || g.lda < std::max<int64_t>(1, a_rows) ||
      g.ldb < std::max<int64_t>(1, b_rows) || g.ldc < std::max(1, g.m) || !g.alpha || !g.beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!((g.algo >= -1 && g.algo <= 23) || (g.algo >= 99 && g.algo <= 115))) return CUBLAS_STATUS_INVALID_VALUE;
  Rounding r;
  if (!supported(g.type_a, g.type_b, g.type_c, g.compute, r)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (g.compute == CUBLAS_COMPUTE_32F && g.handle->math == CUBLAS_TF32_TENSOR_OP_MATH && g.type_a == CUDA_R_32F)
    r = Rounding::Tf32;
  ++stats.gemms;
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;
  const bool dbl = g.compute == CUBLAS_COMPUTE_64F || g.compute == CUBLAS_COMPUTE_64F_PEDANTIC;
  const double alpha = dbl ? *static_cast<const double*>(g.alpha) : *static_cast<const float*>(g.alpha);
  const double beta = dbl ? *static_cast<const double*>(g.beta) : *static_cast<const float*>(g.beta);
  if (ptr_arrays)
    for (int o = 0; o < 3; ++o)
      require_device(ptr_arrays[o], size_t(g.batch) * sizeof(void*),
                     std::string(g.fn) + ": the pointer array of " + "ABC"[o]);
  const int64_t a_cols = g.op_a == CUBLAS_OP_N ? g.k : g.m, b_cols = g.op_b == CUBLAS_OP_N ? g.n : g.k;
  const size_t sa = type_size(g.type_a), sb = type_size(g.type_b), sc = type_size(g.type_c);
  std::vector<double> A(size_t(g.m) * g.k), B(size_t(g.k) * g.n);
  for (int i = 0; i < g.batch; ++i) {
    const void* a = a_of(i);
    const void* b = b_of(i);
    void* c = c_of(i);
    const std::string what = std::string(g.fn) + (g.batch > 1 ? " batch " + std::to_string(i) : std::string());
    if (g.k > 0) {
      require_device(a, size_t((a_cols - 1) * int64_t(g.lda) + a_rows) * sa,
                     what + ": A (lda " + std::to_string(g.lda) + ")");
      require_device(b, size_t((b_cols - 1) * int64_t(g.ldb) + b_rows) * sb,
                     what + ": B (ldb " + std::to_string(g.ldb) + ")");
    }
    require_device(c, size_t((int64_t(g.n) - 1) * g.ldc + g.m) * sc, what + ": C (ldc " + std::to_string(g.ldc) + ")");
    for (int r_ = 0; r_ < g.m; ++r_)
      for (int l = 0; l < g.k; ++l) {
        const size_t at = g.op_a == CUBLAS_OP_N ? size_t(r_) + size_t(l) * g.lda : size_t(l) + size_t(r_) * g.lda;
        A[size_t(r_) * g.k + l] = rounded(load(a, g.type_a, at), g.type_a, r);
      }
    for (int l = 0; l < g.k; ++l)
      for (int j = 0; j < g.n; ++j) {
        const size_t at = g.op_b == CUBLAS_OP_N ? size_t(l) + size_t(j) * g.ldb : size_t(j) + size_t(l) * g.ldb;
        B[size_t(j) * g.k + l] = rounded(load(b, g.type_b, at), g.type_b, r);
      }
    for (int j = 0; j < g.n; ++j)
      for (int r_ = 0; r_ < g.m; ++r_) {
        double acc = 0;
        const double* ar = &A[size_t(r_) * g.k];
        const double* bc = &B[size_t(j) * g.k];
        for (int l = 0; l < g.k; ++l) acc += ar[l] * bc[l];
        const size_t at = size_t(r_) + size_t(j) * g.ldc;
        double v = alpha * acc;
        if (beta != 0) v += beta * load(c, g.type_c, at);  // beta == 0: C is not read (it may hold NaN)
        store(c, g.type_c, at, v);
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace

const char* cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char* cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }
cublasStatus_t cublasCreate(cublasHandle_t* h) {
  register_handle(handles, h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  return unregister_handle(handles, h) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_stream(s)) return CUBLAS_STATUS_INVALID_VALUE;
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
// The handle accessors: NOT_INITIALIZED for a handle that cublasCreate did not give (or that was destroyed).
template <class F>
static cublasStatus_t on_handle(cublasHandle_t h, F&& f) {
  if (!handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  f();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
  return on_handle(h, [&] { *s = h->stream; });
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  return on_handle(h, [&] { h->math = mode; });
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* mode) {
  return on_handle(h, [&] { *mode = h->math; });
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  return on_handle(h, [&] { h->pointer_mode = mode; });
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* workspace, size_t bytes) {
  if (!handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && !device_range(workspace, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  const Gemm g{"cublasSgemm", h, op_a, op_b, m, n, k, alpha, CUDA_R_32F, lda, CUDA_R_32F, ldb, beta, CUDA_R_32F, ldc,
               1, CUBLAS_COMPUTE_32F, -1};
  return gemm(g, [&](int) { return A; }, [&](int) { return B; }, [&](int) { return C; });
}
cublasStatus_t cublasSgemmBatched(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                                  const float* alpha, const float* const A[], int lda, const float* const B[], int ldb,
                                  const float* beta, float* const C[], int ldc, int batch) {
  const Gemm g{"cublasSgemmBatched", h, op_a, op_b, m, n, k, alpha, CUDA_R_32F, lda, CUDA_R_32F, ldb, beta, CUDA_R_32F,
               ldc, batch, CUBLAS_COMPUTE_32F, -1};
  const void* const* arrays[3] = {reinterpret_cast<const void* const*>(A), reinterpret_cast<const void* const*>(B),
                                  reinterpret_cast<const void* const*>(C)};
  return gemm(g, [&](int i) { return A[i]; }, [&](int i) { return B[i]; }, [&](int i) { return C[i]; }, arrays);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long stride_a,
                                         const float* B, int ldb, long long stride_b, const float* beta, float* C,
                                         int ldc, long long stride_c, int batch) {
  const Gemm g{"cublasSgemmStridedBatched", h, op_a, op_b, m, n, k, alpha, CUDA_R_32F, lda, CUDA_R_32F, ldb, beta,
               CUDA_R_32F, ldc, batch, CUBLAS_COMPUTE_32F, -1};
  return gemm(g, [&](int i) { return A + i * stride_a; }, [&](int i) { return B + i * stride_b; },
              [&](int i) { return C + i * stride_c; });
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType_t type_a, int lda, const void* B,
                            cudaDataType_t type_b, int ldb, const void* beta, void* C, cudaDataType_t type_c, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  const Gemm g{"cublasGemmEx", h, op_a, op_b, m, n, k, alpha, type_a, lda, type_b, ldb, beta, type_c, ldc, 1, compute,
               algo};
  return gemm(g, [&](int) { return A; }, [&](int) { return B; }, [&](int) { return C; });
}
cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n,
                                   int k, const void* alpha, const void* const A[], cudaDataType_t type_a, int lda,
                                   const void* const B[], cudaDataType_t type_b, int ldb, const void* beta,
                                   void* const C[], cudaDataType_t type_c, int ldc, int batch,
                                   cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  const Gemm g{"cublasGemmBatchedEx", h, op_a, op_b, m, n, k, alpha, type_a, lda, type_b, ldb, beta, type_c, ldc,
               batch, compute, algo};
  const void* const* arrays[3] = {A, B, reinterpret_cast<const void* const*>(C)};
  return gemm(g, [&](int i) { return A[i]; }, [&](int i) { return B[i]; }, [&](int i) { return C[i]; }, arrays);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m,
                                          int n, int k, const void* alpha, const void* A, cudaDataType_t type_a,
                                          int lda, long long stride_a, const void* B, cudaDataType_t type_b, int ldb,
                                          long long stride_b, const void* beta, void* C, cudaDataType_t type_c, int ldc,
                                          long long stride_c, int batch, cublasComputeType_t compute,
                                          cublasGemmAlgo_t algo) {
  const Gemm g{"cublasGemmStridedBatchedEx", h, op_a, op_b, m, n, k, alpha, type_a, lda, type_b, ldb, beta, type_c,
               ldc, batch, compute, algo};
  return gemm(g, [&](int i) { return static_cast<const char*>(A) + i * stride_a * (long long)type_size(type_a); },
              [&](int i) { return static_cast<const char*>(B) + i * stride_b * (long long)type_size(type_b); },
              [&](int i) { return static_cast<char*>(C) + i * stride_c * (long long)type_size(type_c); });
}
