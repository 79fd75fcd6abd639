#!/usr/bin/env python3
"""Turns a bench_kernels JSON file (run with --benchmark_repetitions=N) into the tables of bench/RESULTS.md
and a GEMV-time plot.

usage: report.py RESULTS.json OUT_PREFIX [TITLE]
writes OUT_PREFIX.md (tables: medians, spread, ratios to DRAM bandwidth and to Eigen fp32), OUT_PREFIX.dat
and OUT_PREFIX.png (gnuplot: single-thread T = 1 time per shape for each variant).
"""
import json
import subprocess
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = defaultdict(dict)  # name -> {median, stddev, bytes_per_second, ...}
    for b in data["benchmarks"]:
        if b.get("run_type") != "aggregate" or b.get("error_occurred"):
            continue
        name = b["run_name"].replace("/real_time", "")
        runs[name][b["aggregate_name"]] = b
    return data["context"], runs


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else ""
    context, runs = load(path)
    def us(agg):
        return agg["median"]["real_time"] if agg else float("nan")  # benchmarks report microseconds

    def cv(agg):
        return 100.0 * agg["stddev"]["real_time"] / agg["mean"]["real_time"] if agg else float("nan")

    dram = {}  # threads -> best median read bandwidth over the stream counts
    dram_detail = []
    for name, agg in sorted(runs.items()):
        if name.startswith("BM_dram_read/"):
            threads = int(name.split("threads:")[1])
            bw = agg["median"]["bytes_per_second"]
            dram[threads] = max(dram.get(threads, 0), bw)
            dram_detail.append(f"{name.split('/')[1]} x {threads} thread(s): {bw / 1e9:.2f} GB/s (cv {cv(agg):.1f}%)")
    # The best single-call read rate any T = 1 benchmark reached per thread count (the fp32 peers stream their
    # weights too, and on some machines faster than the plain read loop): a second, stricter limit.
    best = dict(dram)
    for name, agg in runs.items():
        if "/T:1/" in name and "bytes_per_second" in agg["median"]:
            threads = int(name.split("threads:")[1])
            best[threads] = max(best.get(threads, 0), agg["median"]["bytes_per_second"])
    rows = []
    keys = sorted({tuple(n.split("/")[1:]) for n in runs if n.startswith("BM_binary_linear_tiled/")},
                  key=lambda k: (k[0], k[1], int(k[2][2:]), int(k[3].split(":")[1])))
    order = {"780M": 0, "1.3B": 1, "2.7B": 2}
    keys.sort(key=lambda k: (order.get(k[0], 9), k[1], int(k[3].split(":")[1]), int(k[2][2:])))
    for model, proj, T, threads in keys:
        def get(variant):
            return runs.get("/".join([variant, model, proj, T, threads]))
        tiled, lut, eig = get("BM_binary_linear_tiled"), get("BM_binary_linear_lut"), get("BM_eigen_fp32")
        nthreads = int(threads.split(":")[1])
        rows.append((model, proj, int(T[2:]), nthreads, tiled, lut, eig, dram.get(nthreads), best.get(nthreads)))

    out = []
    out.append(f"Machine: {context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz. "
               f"DRAM read (medians): " + "; ".join(dram_detail) + ". The limit used below is the best per thread count.")
    out.append("")
    out.append("Best T = 1 read rate of any benchmark in the run (stricter limit): " +
               "; ".join(f"{best[t] / 1e9:.2f} GB/s with {t} thread(s)" for t in sorted(best)) + ".")
    out.append("")
    out.append("| model | proj | out x in | T | threads | tiled us (cv%) | lut us (cv%) | Eigen fp32 us (cv%) "
               "| tiled GB/s | tiled / DRAM | tiled / best | Eigen / tiled | Eigen / lut |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    plot = []
    for model, proj, T, nthreads, tiled, lut, eig, bw, top in rows:
        w = tiled["median"]["weight_bytes"] if tiled else float("nan")
        gbps = tiled["median"]["bytes_per_second"] / 1e9 if tiled else float("nan")
        frac = tiled["median"]["bytes_per_second"] / bw if tiled and bw else float("nan")
        frac_top = tiled["median"]["bytes_per_second"] / top if tiled and top else float("nan")
        def f(v, spec, suffix=""):
            return "-" if v != v else format(v, spec) + suffix

        out.append(f"| {model} | {proj} | {shape_of(model, proj)} | {T} | {nthreads} | {f(us(tiled), '.0f')} ({f(cv(tiled), '.1f')}) "
                   f"| {f(us(lut), '.0f')} ({f(cv(lut), '.1f')}) | {f(us(eig), '.0f')} ({f(cv(eig), '.1f')}) | {f(gbps, '.2f')} "
                   f"| {f(100 * frac, '.0f', '%')} | {f(100 * frac_top, '.0f', '%')} | {f(us(eig) / us(tiled), '.1f', 'x')} | {f(us(eig) / us(lut), '.1f', 'x')} |")
        if T == 1 and nthreads == 1:
            plot.append((f"{model} {proj}", w / 1e6, us(tiled), us(lut), us(eig)))
    heads = sorted({tuple(n.split("/")[1:]) for n in runs if n.startswith("BM_dense_gemv_bf16/")},
                   key=lambda k: (order.get(k[0], 9), int(k[2].split(":")[1]), int(k[1][2:])))
    if heads:
        out.append("")
        out.append("LM head (V = 32000 x D):")
        out.append("")
        out.append("| model | T | threads | bf16 us (cv%) | fp32 us (cv%) | Eigen fp32 us (cv%) | bf16 GB/s | Eigen / bf16 |")
        out.append("|---|---|---|---|---|---|---|---|")
        for model, T, threads in heads:
            b16, f32, eig = (runs.get("/".join([v, model, T, threads])) for v in
                             ("BM_dense_gemv_bf16", "BM_dense_gemv_fp32", "BM_eigen_fp32_head"))
            out.append(f"| {model} | {T[2:]} | {threads.split(':')[1]} | {us(b16):.0f} ({cv(b16):.1f}) | {us(f32):.0f} "
                       f"({cv(f32):.1f}) | {us(eig):.0f} ({cv(eig):.1f}) | {b16['median']['bytes_per_second'] / 1e9:.2f} "
                       f"| {us(eig) / us(b16):.2f}x |")
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(out) + "\n")
    plot.sort(key=lambda p: p[1])
    with open(prefix + ".dat", "w") as f:
        f.write("# shape packed_MB tiled_us lut_us eigen_us ('?' = not measured)\n")
        for label, mb, *times in plot:
            f.write(f"\"{label}\" {mb:.3f} " + " ".join("?" if t != t else f"{t:.2f}" for t in times) + "\n")
    series = [(3, "tiled (int16 vpshufb)"), (4, "lut (fp32 tables)"), (5, "Eigen fp32")]
    series = [(c, n) for c, n in series if any(p[c - 1] == p[c - 1] for p in plot)]
    if not series:
        return
    plots = ", ".join(f"'{prefix}.dat' using {c}:xtic(1) title '{n}'" for c, n in series)
    script = f"""
set terminal pngcairo size 900,540 noenhanced
set output '{prefix}.png'
set title 'Packed FBI GEMV (T = 1, one thread) vs shape {title}'
set ylabel 'time per GEMV (us, log scale)'
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30
set key top left
set grid ytics
plot {plots}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def shape_of(model, proj):
    D = {"780M": 1536, "1.3B": 2048, "2.7B": 2560}[model]
    E = 2 * D
    return f"{2 * E + 256 + E // 64} x {D}" if proj == "in_proj" else f"{D} x {E}"


if __name__ == "__main__":
    main()
