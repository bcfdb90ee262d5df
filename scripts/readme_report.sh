#!/usr/bin/env bash
# Regenerates the README's report figure and table (docs/report/) from a small real run set:
# PT, DePT, EPT on RTE, MRPC, CoLA with the quick preset, 2 seeds. The README's example is the real set (the quick
# preset's own budget, ~50 min on 2 cores): MAX_STEPS=200 EXTRA= scripts/readme_report.sh
# Without those variables the runs are cut to 4 steps and 32 examples: a minute-long check of the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-/tmp/readme_results}
MAX_STEPS=${MAX_STEPS:-4}
EXTRA=${EXTRA-"--set train.max_eval_samples=32 --set train.max_length=64 --set train.warmup_steps=2 --set train.timing_warmup_steps=2"}
python -m bench.cli run --suite glue --tasks rte,mrpc,cola --methods pt,dept,ept --preset quick --seeds 42,43 \
  --max-steps "$MAX_STEPS" $EXTRA --data-dir "${BENCH_DATA_DIR:-../shared/data}" --out "$RESULTS" || true
python -m bench.cli report --results "$RESULTS" --out /tmp/readme_report --with-published --vs ept
mkdir -p docs/report
cp /tmp/readme_report/figures/tradeoff_params.png docs/report/tradeoff_params.png
cp /tmp/readme_report/results.md docs/report/results.md
