#!/usr/bin/env python3
"""Source transformer of the CUDA CPU emulator (tools/cuda_emu/README.md).

Copies every header under SRC (include/bimamba) to DST, rewriting the few CUDA constructs that the shim headers
cannot express as macros, and nothing else, so that the emulator compiles and checks the library's own kernels:

  kernel<<<grid, block, smem, stream>>>(args)  ->  ::bimamba_emu::launch(kernel, ::bimamba_emu::LaunchConfig(grid,
                                                   block, smem, stream), args)
  extern __shared__ T name[];                  ->  T* name = ::bimamba_emu::dynamic_shared<T>();
  __shared__ T name[dims];                     ->  static T name[dims];
                                                   ::bimamba_emu::static_shared(&name, sizeof(name));
                                                   (blocks run one at a time; the call poisons it once per block)
  __launch_bounds__(n)                         ->  removed; the kernel body starts with
                                                   ::bimamba_emu::check_launch_bounds(n);
  asm volatile("ptx" : operands);              ->  ::bimamba_emu::inline_asm("ptx");  (no-op for hints such as
                                                   prefetch / griddepcontrol, a runtime error for anything else)
and library-specific hooks (HOOKS below): Workspace::take_bytes poisons the device scratch it hands out, so that
a kernel reading scratch nobody wrote sees NaN, not what the previous op left there; async_copy.cuh's cp.async
lands at the issuing thread's wait, so that a read before the wait sees NaN.

Comments and string literals are left alone. Line numbers are kept and every file starts with a #line directive
naming the original, so compiler messages, __FILE__ (the barrier sites in the emulator's reports) and gdb point at
the library's own source. A file is rewritten only when its content changes (mtimes stay valid for incremental
builds). Usage: transform.py SRC DST   (SRC, DST: folders, or one file each, e.g. a test written in CUDA syntax)
"""
import os
import re
import sys

HEADER_SUFFIXES = (".hpp", ".cuh", ".h", ".inl")


def mask(text):
    """text with comments and the insides of string / char literals replaced by spaces (newlines kept)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
            blank(i + 1, end)
            i = end
        elif c == '"' or c == "'":
            if c == "'":  # a digit separator (1'000) is not a character literal
                k = i - 1
                while k >= 0 and (text[k].isalnum() or text[k] in "_.'"):
                    k -= 1
                if k + 1 < i and text[k + 1].isdigit():
                    i += 1
                    continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


OPEN, CLOSE = "([{", ")]}"


def match_forward(m, i):
    """Index just past the bracket that closes the one at m[i]."""
    depth = 0
    for j in range(i, len(m)):
        if m[j] in OPEN:
            depth += 1
        elif m[j] in CLOSE:
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unbalanced bracket")


def kernel_start(m, end):
    """Start of the kernel expression (a qualified name, maybe with template arguments) that ends before `end`."""
    i = end
    while True:
        while i > 0 and m[i - 1].isspace():
            i -= 1
        if i > 0 and m[i - 1] == ">":  # template arguments: match back to their '<'
            depth, paren = 0, 0
            while i > 0:
                i -= 1
                ch = m[i]
                if ch in ")]":
                    paren += 1
                elif ch in "([":
                    paren -= 1
                elif paren == 0 and ch == ">":
                    depth += 1
                elif paren == 0 and ch == "<":
                    depth -= 1
                    if depth == 0:
                        break
            while i > 0 and m[i - 1].isspace():
                i -= 1
        j = i
        while i > 0 and (m[i - 1].isalnum() or m[i - 1] == "_"):
            i -= 1
        if i == j:
            raise ValueError("no kernel name before <<<")
        k = i
        while k > 0 and m[k - 1].isspace():
            k -= 1
        if k >= 2 and m[k - 2:k] == "::":
            i = k - 2
            k2 = i
            while k2 > 0 and m[k2 - 1].isspace():
                k2 -= 1
            if k2 == 0 or not (m[k2 - 1].isalnum() or m[k2 - 1] in "_>"):
                return i  # a leading ::
            continue
        return i


def rewrite_launches(text, m, edits):
    for hit in re.finditer(r"<<<", m):
        a = hit.start()
        start = kernel_start(m, a)
        # the configuration: up to the >>> outside any brackets
        depth, j = 0, a + 3
        while True:
            if depth == 0 and m.startswith(">>>", j):
                break
            if m[j] in OPEN:
                depth += 1
            elif m[j] in CLOSE:
                depth -= 1
            j += 1
        cfg_end = j
        k = j + 3
        while m[k].isspace():
            k += 1
        if m[k] != "(":
            raise ValueError("no argument list after >>>")
        args_end = match_forward(m, k)
        kernel = text[start:a].rstrip()
        gap = text[start + len(kernel):a]
        cfg = text[a + 3:cfg_end]
        after = text[cfg_end + 3:k]
        args = text[k + 1:args_end - 1]
        new = ("::bimamba_emu::launch(" + kernel + "," + gap + "::bimamba_emu::LaunchConfig(" + cfg + ")" + after +
               ("," + args if args.strip() else args) + ")")
        edits.append((start, args_end, new))


def rewrite_shared(text, m, edits):
    dyn = re.compile(r"extern\s+__shared__\s+((?:__align__\s*\(\s*\w+\s*\)\s*|alignas\s*\([^)]*\)\s*)*)"
                     r"([A-Za-z_][\w:<>,\s]*?)\s*\b([A-Za-z_]\w*)\s*\[\s*\]\s*"
                     r"((?:__align__\s*\(\s*\w+\s*\)\s*)*);")
    done = set()
    for hit in dyn.finditer(m):
        typ, name = hit.group(2).strip(), hit.group(3)
        new = f"{typ}* {name} = ::bimamba_emu::dynamic_shared<{typ}>();"
        edits.append((hit.start(), hit.end(), new + "\n" * text[hit.start():hit.end()].count("\n")))
        done.add(m.find("__shared__", hit.start()))
    for hit in re.finditer(r"\b__shared__\b", m):
        if hit.start() in done:
            continue
        semi = m.find(";", hit.end())
        body = m[hit.end():semi]
        if semi < 0 or re.search(r"[{}=]", body):
            continue
        # declarators split at top-level commas; each ends in a name and optional [dims]
        pieces, depth, last = [], 0, 0
        for k, ch in enumerate(body):
            if ch in "([<":
                depth += 1
            elif ch in ")]>":
                depth -= 1
            elif ch == "," and depth == 0:
                pieces.append((last, k))
                last = k + 1
        pieces.append((last, len(body)))
        names = []
        for a, b in pieces:
            d = re.search(r"\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)$", body[a:b])
            names.append(d.group(1) if d else None)
        if None in names:
            continue
        decl = text[hit.end():semi + 1]
        poison = " ".join(f"::bimamba_emu::static_shared(&{n}, sizeof({n}));" for n in names)
        edits.append((hit.start(), semi + 1, f"static{decl} {poison}"))
        done.add(hit.start())
    return [h.start() for h in re.finditer(r"\b__shared__\b", m) if h.start() not in done]


def rewrite_launch_bounds(text, m, edits):
    for hit in re.finditer(r"\b__launch_bounds__\s*\(", m):
        close = match_forward(m, hit.end() - 1)
        bounds = text[hit.end():close - 1].split(",")[0].strip()  # maxThreadsPerBlock (minBlocks: ignored)
        edits.append((hit.start(), close, ""))
        # the kernel's parameter list, then its body
        p = m.find("(", close)
        if p < 0:
            continue
        q = match_forward(m, p)
        brace, semi = m.find("{", q), m.find(";", q)
        if brace >= 0 and (semi < 0 or brace < semi):
            edits.append((brace + 1, brace + 1, f" ::bimamba_emu::check_launch_bounds({bounds});"))


def rewrite_asm(text, m, edits):
    for hit in re.finditer(r"\b(?:asm|__asm__)\b(?:\s+(?:volatile|__volatile__))?\s*\(", m):
        close = match_forward(m, hit.end() - 1)
        end = close
        k = close
        while k < len(m) and m[k] in " \t":
            k += 1
        if k < len(m) and m[k] == ";":
            end = k + 1
        body = text[hit.end():close - 1]
        mbody = m[hit.end():close - 1]
        colon = mbody.find(":")
        template = (body if colon < 0 else body[:colon]).strip() or '""'
        newlines = text[hit.start():end].count("\n") - template.count("\n")
        edits.append((hit.start(), end, f"::bimamba_emu::inline_asm({template});" + "\n" * max(newlines, 0)))


# (file suffix, anchor line text, code appended to that line): a hook the emulator needs beyond the CUDA syntax. A
# missing anchor is a warning: the emulator still works, without that check.
HOOKS = [
    ("core/workspace.hpp", "void* p = static_cast<char*>(blocks_.back().data) + offset_;",
     " ::bimamba_emu::poison_device(p, bytes);"),
    # cp.async lands at the issuing thread's wait, not at once: a read of the destination before it sees poison.
    ("ops/cuda/async_copy.cuh", "__device__ inline void async_copy_float(float* dst, const float* src) {",
     " ::bimamba_emu::rt::async_copy(dst, src, sizeof(float)); return;"),
    ("ops/cuda/async_copy.cuh", "__device__ inline void async_copy_float4(float* dst, const float* src) {",
     " ::bimamba_emu::rt::async_copy(dst, src, 4 * sizeof(float)); return;"),
    ("ops/cuda/async_copy.cuh", "__device__ inline void async_copy_wait_all() {",
     " ::bimamba_emu::rt::land_async_copies();"),
]


def apply_hooks(text, origin, edits, warnings):
    for suffix, anchor, code in HOOKS:
        if not origin.endswith(suffix):
            continue
        at = text.find(anchor)
        if at < 0 or text.count(anchor) != 1:
            warnings.append(f"{origin}: hook not applied (its anchor line changed): {anchor}")
            continue
        edits.append((at + len(anchor), at + len(anchor), code))


def transform(text, origin):
    m = mask(text)
    edits = []
    rewrite_launches(text, m, edits)
    left = rewrite_shared(text, m, edits)
    rewrite_launch_bounds(text, m, edits)
    rewrite_asm(text, m, edits)
    warnings = [f"{origin}:{text.count(chr(10), 0, pos) + 1}: __shared__ declaration not understood" for pos in left]
    apply_hooks(text, origin, edits, warnings)
    out, last = [], 0
    for a, b, new in sorted(edits, key=lambda e: (e[0], e[1])):
        if a < last:
            raise ValueError(f"{origin}: overlapping rewrites at offset {a}")
        out.append(text[last:a])
        out.append(new)
        last = b
    out.append(text[last:])
    result = "".join(out)
    assert result.count("\n") == text.count("\n"), origin
    return f'#line 1 "{origin}"\n' + result, warnings, len(edits)


def transform_file(path, target):
    """Writes the transformed `path` to `target` when it differs; returns whether it did."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        new, warnings, _ = transform(text, path)
    except (ValueError, IndexError) as e:
        sys.exit(f"transform.py: {path}: {e}")
    for w in warnings:
        print("transform.py: warning:", w, file=sys.stderr)
    old = None
    if os.path.exists(target):
        with open(target, encoding="utf-8") as fh:
            old = fh.read()
    if old == new:
        return False
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(new)
    return True


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    src, dst = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if os.path.isfile(src):
        transform_file(src, dst)
        return
    total, changed = 0, 0
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(HEADER_SUFFIXES):
                path = os.path.join(root, f)
                changed += transform_file(path, os.path.join(dst, os.path.relpath(path, src)))
                total += 1
    print(f"transform.py: {total} headers, {changed} rewritten into {dst}")


if __name__ == "__main__":
    main(sys.argv)
