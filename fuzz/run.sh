#!/usr/bin/env bash
# Builds the fuzz targets (build-fuzz, clang, -DBIMAMBA_BUILD_FUZZERS=ON), assembles each target's seed
# corpus from tests/data (plus fuzz_make_seeds for formats tests/data has no file of), and runs every
# target (or the ones named) for SECONDS each at low priority. Findings land in build-fuzz/artifacts/<target>;
# each run's log, with libFuzzer's final execution count, in build-fuzz/logs/<target>.log. A target stops
# after SECONDS or BIMAMBA_FUZZ_RUNS executions, whichever comes first (docs/security.md's bar: 1800 s or
# 10,000,000 executions). clang and its libFuzzer runtime are installed from Debian when missing (as root).
#
#   fuzz/run.sh [SECONDS] [target ...]        e.g. fuzz/run.sh 1800 pickle zip
#   BIMAMBA_FUZZ_BUILD_DIR (build-fuzz), BIMAMBA_JOBS (2), BIMAMBA_FUZZ_NICE (15), BIMAMBA_FUZZ_SKIP_BUILD=1,
#   BIMAMBA_FUZZ_RUNS (10000000), BIMAMBA_FUZZ_WORKERS (1: more runs that many libFuzzer -jobs on one corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=${BIMAMBA_FUZZ_BUILD_DIR:-build-fuzz}
all=(safetensors sharded_index torch_bin zip pickle config tokenizer_json sentencepiece bpe_encode
     sentencepiece_encode packed token_file training_checkpoint)
targets=("${@:-${all[@]}}")
[ $# -gt 0 ] || targets=("${all[@]}")
if [ -z "${BIMAMBA_FUZZ_SKIP_BUILD:-}" ]; then
  if ! command -v clang++ >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "ok installed"; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "fuzz: installing clang libclang-rt-dev" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >&2
    else
      echo "fuzz: clang / libFuzzer missing; run: sudo apt-get install -y clang libclang-rt-dev" >&2
      exit 1
    fi
  fi
  launcher=()
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" -DBIMAMBA_BUILD_FUZZERS=ON \
    -DBIMAMBA_ENABLE_CUDA=OFF -DBIMAMBA_BUILD_TESTS=OFF -DBIMAMBA_BUILD_EXAMPLES=OFF -DBIMAMBA_BUILD_BENCHMARKS=OFF
  # Only the fuzzers to run (and the seed maker): each is a separate sanitized translation unit.
  cmake --build "$build" -j "${BIMAMBA_JOBS:-2}" --target fuzz_make_seeds "${targets[@]/#/fuzz_}"
fi

corpus=$build/corpus
seeds=$build/generated-seeds
[ -d "$seeds" ] || ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/fuzz_make_seeds" "$seeds"
add() {  # add <target> <files...>: copies seed files into the target's corpus
  local t=$1
  shift
  mkdir -p "$corpus/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$corpus/$t/$(echo "$f" | tr '/' '_')"; done
  return 0
}
data=tests/data
add safetensors $data/*/*.safetensors $seeds/packed/* $seeds/training_checkpoint/*
add sharded_index $seeds/sharded_index/* $data/tokenizers/file-token-counts.json
add torch_bin $data/*/pytorch_model.bin
add zip $data/*/pytorch_model.bin
add config $data/*/config.json
# (not the 2 MB GPT-NeoX file: one load takes seconds under ASan; fuzz_bpe_encode uses it)
add tokenizer_json $seeds/tokenizer_json/*
# (small models cut from llama-2.model by fuzz/make_sentencepiece_seed.py, in tests/data/fuzz/sentencepiece:
# the 500 KB model itself makes every input a 32,000-piece load; fuzz_sentencepiece_encode uses it)
add packed $seeds/packed/*
add token_file $seeds/token_file/*
add training_checkpoint $seeds/training_checkpoint/*
add pickle tests/data/fuzz/pickle/* 2>/dev/null || true
if [ ! -f "$corpus/pickle/data.pkl" ] && command -v python3 >/dev/null; then  # the state dict of the tiny .bin
  mkdir -p "$corpus/pickle"
  python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [x for x in z.namelist() if x.endswith('/data.pkl')][0]; open(sys.argv[2], 'wb').write(z.read(n))" \
    $data/bimamba2-tiny-mamba-ssm/pytorch_model.bin "$corpus/pickle/data.pkl"
fi
for t in bpe_encode sentencepiece_encode; do  # the texts of the tokenizer fixtures, one file each
  mkdir -p "$corpus/$t"
  if command -v python3 >/dev/null; then
    python3 -c "import json, sys; [open(f'{sys.argv[2]}/line{i}', 'w').write(json.loads(l)['text']) for i, l in enumerate(open(sys.argv[1]))]" \
      $data/tokenizers/$([ $t = bpe_encode ] && echo gpt-neox-20b || echo llama-2).jsonl "$corpus/$t"
  fi
done
# Regression inputs (every finding becomes one) are seeds too.
for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t"
  [ -d tests/data/fuzz/$t ] && cp tests/data/fuzz/$t/* "$corpus/$t/" 2>/dev/null || true
done

mkdir -p "$build/logs"
workers=${BIMAMBA_FUZZ_WORKERS:-1}
for t in "${targets[@]}"; do
  mkdir -p "$build/artifacts/$t"
  echo "== fuzz_$t: $seconds s x $workers worker(s)"
  # /usr/bin/time (when present) adds the CPU seconds the fuzzer got: on a shared machine they, not the
  # wall time, say how much fuzzing happened. With workers, it counts every worker (they are its children).
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "cpu: user %U s, system %S s, wall %e s")
  flags=(-max_total_time="$seconds" -runs="${BIMAMBA_FUZZ_RUNS:-10000000}" -timeout=10 -rss_limit_mb=2048
         -print_final_stats=1 -artifact_prefix="$PWD/$build/artifacts/$t/")
  log=$build/logs/$t.log
  failed=0
  if [ "$workers" -gt 1 ]; then
    # libFuzzer's -jobs: that many processes on the one corpus directory (each reloads what the others add),
    # each to its own fuzz-<i>.log; -max_total_time and -runs apply to each. The executions are their sum.
    jobs=$build/logs/$t.jobs
    rm -rf "$jobs" && mkdir -p "$jobs"
    (cd "$jobs" && nice -n "${BIMAMBA_FUZZ_NICE:-15}" "${timer[@]}" "$OLDPWD/$build/fuzz/fuzz_$t" -jobs="$workers" \
       -workers="$workers" "${flags[@]}" "$OLDPWD/$corpus/$t") >"$log" 2>&1 || failed=1
    cat "$jobs"/fuzz-*.log >>"$log"
    if grep -qE "^==[0-9]+==ERROR|^SUMMARY: |deadly signal|Test unit written" "$jobs"/fuzz-*.log; then failed=1; fi
    awk '/stat::number_of_executed_units/ {n += $NF} END {print "executions (all workers): " n}' "$jobs"/fuzz-*.log | tee -a "$log"
  else
    nice -n "${BIMAMBA_FUZZ_NICE:-15}" "${timer[@]}" "$build/fuzz/fuzz_$t" "${flags[@]}" "$corpus/$t" >"$log" 2>&1 || failed=1
  fi
  [ -z "$(ls -A "$build/artifacts/$t")" ] || failed=1
  if [ "$failed" -ne 0 ]; then
    echo "fuzz_$t FAILED: see $log and $build/artifacts/$t"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|Done [0-9]+ runs|^cpu: |^executions " "$log" | tail -4
done
exit ${status:-0}
