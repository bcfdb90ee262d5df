#!/usr/bin/env bash
# Regenerates the README's report figures and table (docs/report/) from the results page's MiniLM set: pt, dept,
# ept, dpt, residual_pt, lpt, lora on SST-2, MRPC and CB with the quick preset and the candidate recipe (constant
# rate, dropout 0), seeds 42, 43, 44, and PT's
# prompt-length sweep on SST-2. scripts/results_page.py runs and keeps the same records in the same folder
# (whichever runs first makes them, the other reuses them: every run is keyed by its spec hash). 72 runs, about
# 1.5 hours on 2 cores with two workers:
#   WORKERS=2 scripts/readme_report.sh
# With the records already there (results/cpu-minilm) it only rebuilds the report, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-results/cpu-minilm}
WORKERS=${WORKERS:-1}
DATA=${BENCH_DATA_DIR:-../shared/data}
# The candidate quick recipe under test (scripts/results_page.py RECIPE, docs/quick-recipe.md).
RECIPE=(--set train.schedule=constant --set train.dropout=0.0)
PAR=()
if [ "$WORKERS" -gt 1 ]; then PAR=(--executor local --workers "$WORKERS"); fi
for suite_tasks in "glue sst2,mrpc" "superglue cb"; do
  set -- $suite_tasks
  python -m bench.cli run --suite "$1" --tasks "$2" --methods pt,dept,ept,dpt,residual_pt,lpt,lora \
    --preset quick --seeds 42,43,44 "${RECIPE[@]}" --data-dir "$DATA" --out "$RESULTS" "${PAR[@]}"
done
# PT's prompt length on SST-2 (l = 20 is the grid's run): the report's prompt-length figure.
python -m bench.cli run --suite glue --tasks sst2 --methods pt --sweep pt.num_tokens=5,10,20,40 --preset quick \
  --seeds 42,43,44 "${RECIPE[@]}" --data-dir "$DATA" --out "$RESULTS" "${PAR[@]}"
python -m bench.cli report --results "$RESULTS" --out /tmp/readme_report --with-published --vs "pt (num_tokens=20)"
mkdir -p docs/report
cp /tmp/readme_report/figures/tradeoff_params.png docs/report/tradeoff_params.png
cp /tmp/readme_report/figures/curves.png docs/report/curves.png
cp /tmp/readme_report/results.md docs/report/results.md
