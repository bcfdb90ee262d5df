#!/usr/bin/env bash
# Regenerates the README's report figures and table (docs/report/) from the results page's MiniLM set: the
# grid and PT's prompt-length sweep that scripts/results_page.py defines (METHODS, TASKS, SEEDS, SWEEP) and
# runs here with --minilm-only, into the same folder, so both are made from the same records (every run is
# keyed by its spec hash: whichever runs first makes them, the other reuses them). About 1.5 hours on 2 cores
# with two workers:
#   WORKERS=2 scripts/readme_report.sh
# With the records already there (results/cpu-minilm) it only rebuilds the report, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-results/cpu-minilm}
WORKERS=${WORKERS:-1}
export BENCH_DATA_DIR=${BENCH_DATA_DIR:-../shared/data}
python scripts/results_page.py --minilm-only --results "$RESULTS" --workers "$WORKERS"
# PT's row to test against: "pt (num_tokens=20)" once the sweep's records are there (they split PT into rows);
# VS=pt for a folder without them (results/cpu-minilm as committed, docs/report/'s figures).
VS=${VS:-"pt (num_tokens=20)"}
python -m bench.cli report --results "$RESULTS" --out /tmp/readme_report --with-published --vs "$VS"
mkdir -p docs/report
cp /tmp/readme_report/figures/tradeoff_params.png docs/report/tradeoff_params.png
cp /tmp/readme_report/figures/curves.png docs/report/curves.png
cp /tmp/readme_report/results.md docs/report/results.md
