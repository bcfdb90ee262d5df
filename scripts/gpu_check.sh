#!/usr/bin/env bash
# ptbench's GPU check: on one CUDA GPU, in under 10 minutes, with a random-init T5-Base (no download):
#   1. bench perf for pt, dept, ept, lpt, lora at batch 32, s=256 in fp32, tf32 and bf16 (harness loop),
#      with achieved TFLOP/s and its share of the GPU's datasheet peak in each precision;
#   1b. bench/cost's predictions against the GPU (scripts/cost_check.py): T5-Base at batch 32, s=256, fp32 and
#      bf16, PT, DePT, EPT, LPT, LoRA and prefix: predicted saved activations against autograd's, predicted peak
#      against torch.cuda.max_memory_allocated, calibrated ms/step against measured (targets 5%, 15%, 20%);
#   2. a short paper-preset bench run on RTE (30 steps, dev every 15) in fp32 and bf16, then a check that
#      every CUDA memory field of each record is filled and plausible;
#   3. a forced out-of-memory run (a huge batch) in a grid of two: it must end in an `oom` record while the
#      grid carries on to the next run, which must finish `ok`.
# Everything goes under the folder it prints (default gpu-check-<UTC time>; or the first argument).
# Exit 0 when every check passed, 1 when one failed, 2 when there is no CUDA device.
#
#   BENCH_DATA_DIR=/path/to/data bash scripts/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False): run this on a machine with an NVIDIA GPU" >&2
    exit 2
fi

OUT=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/gpu_check.log") 2>&1
DATA=${BENCH_DATA_DIR:-../shared/data}
MODEL=$OUT/t5-base-random
BENCH=(python -m bench.cli)  # this checkout's code, whichever `bench` an install put on PATH
FAILED=()

echo "== ptbench GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), output in $OUT"
nvidia-smi -L || echo "(nvidia-smi not found)"
python -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(0))"
echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?') | data $DATA"

check() {  # check NAME COMMAND...: run it, remember a failure, never stop the script
    local name=$1
    shift
    echo "== [$(date -u +%H:%M:%S)] $name"
    if ! "$@"; then
        echo "!! FAILED: $name"
        FAILED+=("$name")
    fi
}

check "random-init T5-Base" python -m scripts.random_init_model t5-base "$MODEL"

check "bench perf, T5-Base, batch 32, s=256, fp32/tf32/bf16" \
    "${BENCH[@]}" perf --model "$MODEL" --methods pt,dept,ept,lpt,lora --variants harness --batch 32 --seq-len 256 \
    --steps 10 --warmup 3 --precision fp32,tf32,bf16 --out "$OUT/perf.json"
check "perf rows: every precision ran, TFLOP/s below the datasheet peak" \
    python -m scripts.check_gpu_record perf "$OUT/perf.json" fp32,tf32,bf16

check "predicted vs measured memory and time (bench/cost), T5-Base, batch 32, s=256, fp32/bf16" \
    env PTBENCH_CACHE_DIR="$OUT/cost-cache" python scripts/cost_check.py --models t5-base --batch 32 --seq 256 \
    --precision fp32,bf16 --json "$OUT/cost.json"

RUN=("${BENCH[@]}" run --suite glue --tasks rte --methods pt --preset paper --model "$MODEL" --seeds 42
     --data-dir "$DATA" --no-artifacts --set train.max_eval_samples=64)
check "paper preset on RTE, 30 steps, fp32 and bf16" \
    "${RUN[@]}" --out "$OUT/rte" --max-steps 30 --set train.eval_every=15 --sweep train.precision=fp32,bf16
check "CUDA memory fields of the RTE records" bash -c 'python -m scripts.check_gpu_record memory "$0"/*.json' "$OUT/rte"

# A batch of every RTE training row (the loop caps a batch at the training set) cannot fit: the first run
# must be recorded as oom, and the second (batch 8) must still run. bench run itself exits 1 (a run failed).
echo "== [$(date -u +%H:%M:%S)] forced out-of-memory run, then a normal one (bench run exits 1 here by design)"
"${RUN[@]}" --out "$OUT/oom" --max-steps 4 --set train.eval_every=4 --sweep train.batch_size=100000,8
echo "bench run exited $?"
check "the oom record and the grid going on" python -m scripts.check_gpu_record oom "$OUT/oom"

echo "== [$(date -u +%H:%M:%S)] done in ${SECONDS}s, output in $OUT"
if ((${#FAILED[@]})); then
    printf '!! %d check(s) failed:\n' "${#FAILED[@]}"
    printf '!!   %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all GPU checks passed"
