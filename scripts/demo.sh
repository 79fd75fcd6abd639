#!/usr/bin/env bash
# The end-to-end demo (README command (a)): on the corpus shipped in examples/data, train a small
# full-precision Mamba-2 teacher, distil a Bi-Mamba student from it, convert the student to the packed
# format, print a table (perplexity, parameters, bytes, compression) and generate a sample with both.
#
#   scripts/demo.sh                      # about ten minutes on a 2-core machine
#   PAPER_TABLE=1 scripts/demo.sh        # adds the rows of docs/results.md: the same student trained with
#                                        # cross entropy only, naive binarization of the teacher, PTB test
#   SCRATCH=1 scripts/demo.sh            # adds the student distilled from a random initialisation
#
# Settings (environment): BIMAMBA (a built CLI binary; when unset the script builds it in BIMAMBA_BUILD_DIR,
# default build, as Release with BIMAMBA_JOBS parallel jobs, default 2), OUT (run directory, default
# demo-run), D_MODEL, N_LAYER, D_STATE (default: the preset's), BATCH, SEQ_LEN, TEACHER_STEPS, STUDENT_STEPS,
# TEACHER_LR, STUDENT_LR, EVAL_EVERY (validation and checkpoint interval, default 25), EVAL_TOKENS (tokens of
# each test file scored, W = 256), THREADS. Re-running resumes finished stages: a stage whose output exists
# is skipped. docs/results.md gives the settings of its table.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${BIMAMBA:-}" ]]; then
  bash scripts/setup.sh
  build=${BIMAMBA_BUILD_DIR:-build}
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >&2
  cmake --build "$build" --target bimamba_cli -j "${BIMAMBA_JOBS:-2}" >&2
  BIMAMBA=$build/bin/bimamba
fi
OUT=${OUT:-demo-run}
D_MODEL=${D_MODEL:-128}
N_LAYER=${N_LAYER:-2}
D_STATE=${D_STATE:-}
BATCH=${BATCH:-4}
SEQ_LEN=${SEQ_LEN:-128}
TEACHER_STEPS=${TEACHER_STEPS:-100}
STUDENT_STEPS=${STUDENT_STEPS:-100}
TEACHER_LR=${TEACHER_LR:-3e-3}
STUDENT_LR=${STUDENT_LR:-1e-3}
EVAL_EVERY=${EVAL_EVERY:-25}
EVAL_TOKENS=${EVAL_TOKENS:-8192}
THREADS=${THREADS:-0}
TOKENIZER=tests/data/tokenizers/gpt-neox-20b.json
TRAIN_TEXT=(--text examples/data/wikitext-2/valid.txt --text examples/data/tinyshakespeare/input.txt)
TESTS=(wikitext-2:examples/data/wikitext-2/test.txt)
[[ -n "${PAPER_TABLE:-}" ]] && TESTS+=(ptb:examples/data/ptb/test.txt)

[[ -x "$BIMAMBA" ]] || { echo "demo: $BIMAMBA is not an executable" >&2; exit 1; }
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*" >&2; }
common=(--tokenizer "$TOKENIZER" "${TRAIN_TEXT[@]}" --batch "$BATCH" --seq-len "$SEQ_LEN" --eval-every "$EVAL_EVERY"
        --eval-batches 4 --checkpoint-every "$EVAL_EVERY" --threads "$THREADS" --progress)

if [[ ! -f "$OUT/teacher/model.safetensors" ]]; then
  say "1. train the full-precision Mamba-2 teacher (d_model $D_MODEL, $N_LAYER layers, $TEACHER_STEPS steps)"
  resume=(); [[ -f "$OUT/teacher/train_state.safetensors" ]] && resume=(--resume)
  shape=(--d-model "$D_MODEL" --n-layer "$N_LAYER"); [[ -n "$D_STATE" ]] && shape+=(--d-state "$D_STATE")
  "$BIMAMBA" train "${common[@]}" --preset mamba2-130m "${shape[@]}" \
    --steps "$TEACHER_STEPS" --lr "$TEACHER_LR" --out "$OUT/teacher" "${resume[@]}"
fi

distill() {  # distill NAME extra-args...
  local name=$1; shift
  [[ -f "$OUT/$name/model.safetensors" ]] && return
  local resume=(); [[ -f "$OUT/$name/train_state.safetensors" ]] && resume=(--resume)
  "$BIMAMBA" distill "${common[@]}" --teacher "$OUT/teacher" --steps "$STUDENT_STEPS" --lr "$STUDENT_LR" \
    --out "$OUT/$name" "${resume[@]}" "$@"
}
say "2. distil the Bi-Mamba student from the teacher ($STUDENT_STEPS steps, student initialised from the teacher)"
distill student
if [[ -n "${PAPER_TABLE:-}" ]]; then
  say "2b. the same student trained with next-token cross entropy only"
  distill student-ce --distill-weight 0 --ce-weight 1
fi
if [[ -n "${SCRATCH:-}" ]]; then
  say "2c. the student distilled from a random initialisation (as the paper trains it)"
  distill student-scratch --init random
fi

say "3. convert to the packed format"
"$BIMAMBA" convert --model "$OUT/student" --out "$OUT/student.packed.safetensors" --json > "$OUT/convert.json"
"$BIMAMBA" convert --model "$OUT/teacher" --out "$OUT/teacher-naive.packed.safetensors" --json > "$OUT/naive.json"
[[ -n "${PAPER_TABLE:-}" ]] &&
  "$BIMAMBA" convert --model "$OUT/student-ce" --out "$OUT/student-ce.packed.safetensors" --json > "$OUT/convert-ce.json"
[[ -n "${SCRATCH:-}" ]] && "$BIMAMBA" convert --model "$OUT/student-scratch" \
  --out "$OUT/student-scratch.packed.safetensors" --json > "$OUT/convert-scratch.json"

models=(teacher:"$OUT/teacher" student:"$OUT/student.packed.safetensors" naive:"$OUT/teacher-naive.packed.safetensors")
[[ -n "${PAPER_TABLE:-}" ]] && models+=(student-ce:"$OUT/student-ce.packed.safetensors")
[[ -n "${SCRATCH:-}" ]] && models+=(student-scratch:"$OUT/student-scratch.packed.safetensors")
say "4. perplexity (W = 256, first $EVAL_TOKENS tokens of each test file)"
for m in "${models[@]}"; do
  for t in "${TESTS[@]}"; do
    "$BIMAMBA" perplexity --model "${m#*:}" --tokenizer "$TOKENIZER" --text "${t#*:}" --window 256 \
      --max-tokens "$EVAL_TOKENS" --threads "$THREADS" --json --progress > "$OUT/ppl.${m%%:*}.${t%%:*}.json"
  done
  "$BIMAMBA" info "${m#*:}" > "$OUT/info.${m%%:*}.json"
done

say "5. results"
{
  printf '| model | %s | parameters | bytes | compression vs teacher |\n' "$(printf '%s ppl | ' "${TESTS[@]%%:*}" | sed 's/ | $//')"
  printf '| --- |%s --- | --- | --- |\n' "$(printf ' --- |%.0s' "${TESTS[@]}")"
  teacher_bytes=$(jq .bytes "$OUT/info.teacher.json")
  for m in "${models[@]}"; do
    name=${m%%:*}
    row="| $name |"
    for t in "${TESTS[@]}"; do row+=" $(jq -r '.ppl * 100 | round / 100' "$OUT/ppl.$name.${t%%:*}.json") |"; done
    bytes=$(jq .bytes "$OUT/info.$name.json")
    row+=" $(jq .parameters "$OUT/info.$name.json") | $bytes | $(jq -n "$teacher_bytes / $bytes * 100 | round / 100")x |"
    echo "$row"
  done
} | tee "$OUT/table.md"

say "6. samples (greedy, 40 tokens)"
for m in teacher:"$OUT/teacher" student:"$OUT/student.packed.safetensors"; do
  printf '\n[%s] ' "${m%%:*}"
  "$BIMAMBA" generate --model "${m#*:}" --tokenizer "$TOKENIZER" --prompt "The king said" --max-new-tokens 40 \
    --threads "$THREADS"
done
echo
