"""docs/results.md: the CPU results page, made from records on this machine by this one script.

    python scripts/results_page.py                 # run what is missing (re-runs skip finished work), then write
    python scripts/results_page.py --no-run        # only rebuild the page from the records already there

What it runs (``bench run`` with the quick presets; every run keyed by its spec hash, so a second call skips
finished runs): the prompt methods and LoRA on SST-2, MRPC and CB on MiniLM (STS-B is left out:
docs/quick-recipe.md#sts-b), and PT, DePT and EPT on SST-2 on SmolLM2, each over seeds 42, 43 and 44; and the
plain-PEFT reference runs of PT and LoRA
(``scripts/plain_peft.py``) on the MiniLM tasks. What it writes: ``docs/results.md`` (tables) and the report of
the MiniLM records (``bench report``: trade-off and learning-curve figures, significance table) under
``docs/results/``. Every number on the page comes from those records.

The page is ``bench report``'s library: its tables and statistics in ``bench/report/page_sections.py`` (the
bootstrap: ``bench/report/stats.py``), its prose in ``bench/report/results_page.py``; this script runs what is
missing, picks the grids' own records and writes the page. Tests: ``tests/test_results_page.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.report.load import by_cell, finished_records, load_plain
from bench.report.page_sections import DECODER_METHODS, METHODS, PLAIN_METHODS, SEEDS, TASKS
from bench.report.results_page import render
from methods.registry import list_methods

# PT's prompt length swept on SST-2 (l = 20 is the grid's own run): the report's prompt-length figure. Kept in the
# same results folder, so the page reads only the grid's own runs (``grid_run_ids``).
SWEEP = ("pt", "num_tokens", ("5", "10", "20", "40"))
# The harness's own recipe, the quick preset's from 2026-12-02 to 2026-12-07, as ``--set`` fields on today's
# preset (results/quick-2026-12-02/README.md): the page sets its records beside today's, so what the change to
# PEFT's recipe cost or gained each method stays in view (docs/quick-recipe.md#what-the-quick-preset-ships).
EARLIER_RECIPE: dict[str, dict[str, str]] = {
    "train": {
        "schedule": "linear",
        "warmup_steps": "20",
        "eval_every": "100",
        "dropout": "0.0",
        "head_weight_decay": "0.0",
        "encoder_prompt_position": "after_cls",
    },
    "pt": {"init": "vocab", "weight_decay": "1e-5"},
    "dept": {"weight_decay": "0"},
    "ept": {"weight_decay": "0"},
    "dpt": {"weight_decay": "1e-5"},
    "residual_pt": {"weight_decay": "1e-5"},
    "lpt": {"weight_decay": "0.1"},
    "lora": {"weight_decay": "0"},
}


def grid_run_ids(
    methods: Sequence[str],
    preset: str,
    tasks: Sequence[tuple[str, str]],
    overrides: dict[str, dict[str, str]] | None = None,
) -> set[str]:
    """The run ids the grid plans (the preset's settings exactly, plus ``overrides`` as ``--set`` gives them), so
    that other runs in the same folder (the prompt-length sweep, runs with ``--set``) never enter the page's
    tables."""
    from bench.planning.plan import RunRequest, plan

    ids: set[str] = set()
    for suite in dict.fromkeys(s for s, _ in tasks):
        names = [t for s, t in tasks if s == suite]
        request = RunRequest(
            suite,
            names,
            list(methods),
            list(SEEDS),
            preset,
            data_dir=os.environ.get("BENCH_DATA_DIR"),
            overrides=overrides,
        )
        ids |= {spec.run_id for spec in plan(request)}
    return ids


# ---- running what is missing -----------------------------------------------------------------------------


def run_minilm(results: Path, workers: int) -> None:
    """The MiniLM grid, then PT's prompt-length sweep (``bench run``; finished runs are skipped by their run id):
    the records both this page and the README's report (``scripts/readme_report.sh``) are made from."""
    run_grid(results, workers)
    run_sweep(results, workers)


def run_grid(results: Path, workers: int) -> None:
    seeds = ",".join(map(str, SEEDS))
    for suite in ("glue", "superglue"):
        tasks = ",".join(t for s, t in TASKS if s == suite)
        _bench(["--suite", suite, "--tasks", tasks, "--methods", ",".join(METHODS), "--preset", "quick",
                "--seeds", seeds, "--out", str(results)], workers)  # fmt: skip


def run_sweep(results: Path, workers: int) -> None:
    method, field, values = SWEEP
    _bench(["--suite", "glue", "--tasks", "sst2", "--methods", method, "--preset", "quick", "--sweep",
            f"{method}.{field}={','.join(values)}", "--seeds", ",".join(map(str, SEEDS)), "--out",
            str(results)], workers)  # fmt: skip


def run_decoder(decoder_results: Path, workers: int) -> None:
    _bench(["--suite", "glue", "--tasks", "sst2", "--methods", ",".join(DECODER_METHODS), "--preset",
            "quick-decoder", "--seeds", ",".join(map(str, SEEDS)), "--out", str(decoder_results)], workers)  # fmt: skip


def run_plain(plain: Path, workers: int) -> None:
    """The plain-PEFT reference runs that have no row yet, ``workers`` at a time, each with its share of the
    cores as one thread count (``OMP_NUM_THREADS``, as ``bench run --workers`` gives its workers): a run's
    floating-point sums, and so its result, depend on its thread count."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.grid.execute import threads_env

    done = load_plain(plain)
    commands = []
    for method in PLAIN_METHODS:
        for suite, task in TASKS:
            have = {r["seed"] for r in done.get((task, method), []) if "predictions" in r}
            for seed in (s for s in SEEDS if s not in have):
                commands.append([sys.executable, "scripts/plain_peft.py", "--method", method, "--suite", suite,
                                 "--task", task, "--seeds", str(seed), "--out", str(plain)])  # fmt: skip
    env = {**os.environ, **threads_env("local", workers)}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done_run in [pool.submit(subprocess.run, c, check=True, env=env) for c in commands]:
            done_run.result()


def run_missing(results: Path, decoder_results: Path, plain: Path, workers: int) -> None:
    """Everything the page reads, the grid first (what the page's tables need most), then the plain-PEFT rows,
    the SmolLM2 grid and the sweep; each step skips what is already there."""
    run_grid(results, workers)
    run_plain(plain, workers)
    run_decoder(decoder_results, workers)
    run_sweep(results, workers)


def _bench(args: list[str], workers: int) -> None:
    extra = ["--executor", "local", "--workers", str(workers)] if workers > 1 else []
    subprocess.run(["bench", "run", *args, *extra], check=True)


# ---- the page --------------------------------------------------------------------------------------------


def _train_targets(suite: str, task_name: str, max_train: int) -> list[str]:
    from bench.planning.inputs import subsample
    from suites import get_task, load_splits

    task = get_task(task_name, suite)
    splits = load_splits(task, Path(os.environ["BENCH_DATA_DIR"]), seed=42)
    return [e.target for e in subsample(splits.train, max_train)]


def write_page(
    results: Path, decoder_results: Path, plain_path: Path, out: Path, report_dir: Path, earlier_results: Path
) -> None:
    """The grids' own records (``grid_run_ids``), their report (``bench report``) and the page."""

    def grid(folder: Path, ids: set[str]) -> list[dict]:
        return [r for r in finished_records(folder) if r["run_id"] in ids]

    records = grid(results, grid_run_ids(METHODS, "quick", TASKS))
    earlier = by_cell(grid(earlier_results, grid_run_ids(METHODS, "quick", TASKS, EARLIER_RECIPE)))
    decoder = grid(decoder_results, grid_run_ids(DECODER_METHODS, "quick-decoder", (("glue", "sst2"),)))
    listed = {task for _, task in TASKS}
    plain = {key: rows for key, rows in load_plain(plain_path).items() if key[0] in listed}
    if records:
        subprocess.run(
            ["bench", "report", "--results", str(results), "--out", str(report_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    rel = os.path.relpath(report_dir, out.parent)
    shown = {*METHODS, *DECODER_METHODS}
    unrun = [m for m in list_methods() if m not in shown]
    out.write_text(render(records, decoder, earlier, plain, _train_targets, str(earlier_results), rel, unrun))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/cpu-minilm", type=Path)
    parser.add_argument("--decoder-results", default="results/cpu-smollm2", type=Path)
    parser.add_argument("--plain", default="results/plain_peft.jsonl", type=Path)
    parser.add_argument(
        "--earlier", default="results/quick-2026-12-02", type=Path, help="the earlier recipe's records"
    )
    parser.add_argument("--out", default="docs/results.md", type=Path)
    parser.add_argument("--report-dir", default="docs/results", type=Path)
    parser.add_argument(
        "--workers", type=int, default=1, help="concurrent bench runs (default 1: clean timings)"
    )
    parser.add_argument("--no-run", action="store_true", help="only rebuild the page from existing records")
    parser.add_argument(
        "--minilm-only",
        action="store_true",
        help="only run the MiniLM grid and sweep into --results, write no page (scripts/readme_report.sh)",
    )
    args = parser.parse_args()
    if args.minilm_only:
        run_minilm(args.results, args.workers)
        return
    if not args.no_run:
        run_missing(args.results, args.decoder_results, args.plain, args.workers)
    write_page(args.results, args.decoder_results, args.plain, args.out, args.report_dir, args.earlier)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
