#!/usr/bin/env bash
# bench perf --eval's label-scoring table on both text-to-text families (docs/performance.md#label-scoring):
# the packaged SmolLM2 (decoder) and a random-init T5-Base (seq2seq; time depends on shapes only).
# BATCH, SEQ, STEPS and WARMUP override the defaults; MODELS picks the models (default: both).
set -euo pipefail
cd "$(dirname "$0")/.."
T5=${T5:-/tmp/t5-base-random}
MODELS=${MODELS:-"smollm2 $T5"}
for model in $MODELS; do
  if [ "$model" = "$T5" ] && [ ! -d "$T5" ]; then python -m scripts.random_init_model t5-base "$T5"; fi
  python -m bench.cli perf --model "$model" --methods pt --variants "" --eval --batch "${BATCH:-8}" \
    --seq-len "${SEQ:-64}" --steps "${STEPS:-3}" --warmup "${WARMUP:-1}" \
    --out "reports/perf_scoring_$(basename "$model").json"
done
