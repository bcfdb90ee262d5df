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

Tests of the page's arithmetic: ``tests/test_results_page.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHODS = ("pt", "dept", "ept", "dpt", "residual_pt", "lpt", "lora")
TASKS = (("glue", "sst2"), ("glue", "mrpc"), ("superglue", "cb"))
# Tasks the grid runs and the page shows, left out of the verdict on the majority class, with the reason the page
# gives: 200 steps on MiniLM do not learn them distinguishably from it (docs/quick-recipe.md#mrpc).
UNLISTED = {
    "mrpc": "200 steps on MiniLM do not learn MRPC distinguishably from its majority class under either quick "
    "recipe measured (PEFT's: the table below; the harness's earlier one: [the quick recipe](quick-recipe.md#mrpc)), "
    "so a verdict here would be about noise",
}
SEEDS = (42, 43, 44)
DECODER_METHODS = ("pt", "dept", "ept")
PLAIN_METHODS = ("pt", "lora")
# PT's prompt length swept on SST-2 (l = 20 is the grid's own run): the report's prompt-length figure. Kept in the
# same results folder, so the page reads only the grid's own runs (``grid_run_ids``).
SWEEP = ("pt", "num_tokens", ("5", "10", "20", "40"))
RESAMPLES = 1_000
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

Metric = Callable[[list[str], list[str]], float]


@dataclass(frozen=True)
class Delta:
    """A difference of means over seeds (``a - b``, metric points) with a bootstrap 95% interval and the share
    of resamples on the other side of 0 (two-sided p)."""

    mean: float
    low: float
    high: float
    p: float

    def text(self) -> str:
        return f"{self.mean:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def bootstrap_delta(
    a: Sequence[Sequence[str]],
    b: Sequence[Sequence[str]],
    references: Sequence[str],
    metric: Metric,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Delta:
    """Mean over seeds of ``metric(a_seed) - metric(b_seed)``, with the report's hierarchical bootstrap
    (``bench.report.stats.resample_hierarchical``): seeds drawn with replacement on each side and one set of
    test rows shared by both (paired over examples), so seed-to-seed spread and test-set sampling both widen the
    interval. ``a``, ``b``: per seed, one prediction string per test row (``[seeds, rows]``); a constant
    baseline (the majority class) is one "seed"."""
    from bench.report.stats import resample_hierarchical

    result = resample_hierarchical(metric, a, b, references, resamples, seed)
    return Delta(result.delta, result.low, result.high, result.p)


def majority_label(targets: Sequence[str]) -> str:
    """The most frequent training target (ties: the smallest string), the class a trivial model predicts."""
    values, counts = np.unique(np.asarray(targets, dtype=object).astype(str), return_counts=True)
    return str(values[np.argmax(counts)])


# ---- reading what was run --------------------------------------------------------------------------------


def load_records(results: Path) -> list[dict]:
    """Every finished (status ok) run record under ``results`` (one JSON per run)."""
    out = []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("status") == "ok" and "spec" in record:
            out.append(record)
    return out


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


def by_cell(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """``{(task, method): [record per seed, seed order]}``."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for rec in records:
        cells.setdefault((rec["spec"]["task"], rec["spec"]["method"]), []).append(rec)
    return {k: sorted(v, key=lambda r: r["spec"]["seed"]) for k, v in cells.items()}


def load_plain(path: Path) -> dict[tuple[str, str], list[dict]]:
    """The plain-PEFT rows (``scripts/plain_peft.py``'s JSON lines), the last row per (task, method, seed)."""
    rows: dict[tuple[str, str, int], dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["task"], row["method"], row["seed"])] = row
    cells: dict[tuple[str, str], list[dict]] = {}
    for (task, method, _), row in sorted(rows.items()):
        cells.setdefault((task, method), []).append(row)
    return cells


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


def _metric(suite: str, task_name: str) -> tuple[object, Metric]:
    from suites import get_task, metrics

    task = get_task(task_name, suite)
    labels = task.label_strings()

    def metric(predictions: list[str], references: list[str]) -> float:
        # The headline alone: a bootstrap calls this thousands of times, and the task's other metrics (MRPC's
        # and CB's F1 through scikit-learn) would cost most of the page's time.
        return metrics.compute([task.headline_metric], predictions, references, labels)[task.headline_metric]

    return task, metric


def _train_targets(suite: str, task_name: str, max_train: int) -> list[str]:
    from bench.run.assemble import subsample
    from suites import get_task, load_splits

    task = get_task(task_name, suite)
    splits = load_splits(task, Path(os.environ["BENCH_DATA_DIR"]), seed=42)
    return [e.target for e in subsample(splits.train, max_train)]


def _predictions(rec: dict) -> tuple[list[str], list[str]]:
    test = rec["predictions"]["test"]
    return test["predicted"], test["reference"]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else ""
    return f"{np.mean(values):.1f}{sd}"


def _headline(rec: dict) -> float:
    return rec["metrics"]["headline"]["test"]


def _wall_s(records: list[dict]) -> float:
    total = 0.0
    for rec in records:
        start, end = rec.get("started_at"), rec.get("finished_at")
        if start and end:
            total += (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return total


def _busy_s(records: list[dict]) -> float:
    """Wall time during which at least one run was running: the union of the runs' start-finish intervals.

    Why not first start to last finish: a grid made over several sessions (or resumed after a kill) would count
    the gaps between them, which no run spent."""
    spans = sorted(
        (dt.datetime.fromisoformat(r["started_at"]), dt.datetime.fromisoformat(r["finished_at"]))
        for r in records
        if r.get("started_at") and r.get("finished_at")
    )
    total, current = 0.0, None
    for start, end in spans:
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            total += (current[1] - current[0]).total_seconds()
        current = (start, end)
    return total + ((current[1] - current[0]).total_seconds() if current else 0.0)


def _workers(records: list[dict]) -> str:
    """The grid's concurrent worker counts, as the records' contention field gives them (``"2"``, ``"1-2"``)."""
    counts = sorted({(r.get("contention") or {}).get("workers") or 1 for r in records})
    return "-".join(map(str, (counts[0], counts[-1]) if len(counts) > 1 else counts)) if counts else "1"


def _packages(records: list[dict]) -> str:
    """The library versions the records ran with (``env.packages``), each with every version seen."""
    seen: dict[str, set[str]] = {}
    for rec in records:
        for name in ("torch", "transformers", "peft"):
            version = ((rec.get("env") or {}).get("packages") or {}).get(name)
            if version:
                seen.setdefault(name, set()).add(version)
    return ", ".join(f"{name} {' / '.join(sorted(v))}" for name, v in seen.items()) or "not recorded"


def _display(records: list[dict], method: str) -> str:
    for rec in records:
        name = (rec.get("method_record") or {}).get("display_name")
        if name:
            return name
    return method


def minilm_section(cells: dict, lines: list[str]) -> list[str]:
    """Per task: each method's mean ± sd over seeds and its difference from the majority class; returns the
    (task, method) cells of listed tasks (not in ``UNLISTED``) that do not beat it (mean at or below it; STS-B: the
    interval's lower end at or below 0)."""
    failing = []
    for suite, task_name in TASKS:
        task, metric = _metric(suite, task_name)
        recs = [r for m in METHODS for r in cells.get((task_name, m), [])]
        if not recs:
            lines += [f"### {task_name}", "", "No records yet.", ""]
            continue
        references = _predictions(recs[0])[1]
        max_train = recs[0]["spec"]["train"].get("max_train_samples")
        majority = majority_label(_train_targets(suite, task_name, max_train))
        constant = [majority] * len(references)
        regression = task.is_regression
        base = (
            "a constant prediction (Pearson undefined: 0)" if regression else f"majority class '{majority}'"
        )
        base_score = 0.0 if regression else metric(constant, references)
        lines += [
            f"### {task_name} ({task.headline_metric}, {len(references)} test rows)",
            "",
            f"Baseline: {base}, {base_score:.1f}.",
            "",
            *([f"Shown, not a listed task: {UNLISTED[task_name]}.", ""] if task_name in UNLISTED else []),
            f"| method | seeds | test {task.headline_metric} (mean ± sd) | vs baseline [95% CI] | p |",
            "|---|---|---|---|---|",
        ]
        for method in METHODS:
            runs = cells.get((task_name, method), [])
            if not runs:
                lines.append(f"| {method} | 0 | - | - | - |")
                continue
            preds = [_predictions(r)[0] for r in runs]
            if regression:  # against 0: bootstrap the Pearson itself
                delta = bootstrap_delta(preds, [["0"] * len(references)], references, _nan_zero(metric))
            else:
                delta = bootstrap_delta(preds, [constant], references, metric)
            # Beating the baseline: a mean above it (classification); STS-B: a Pearson clearly above 0 (the
            # interval's lower end). The interval says by how much either way.
            if (delta.low if regression else delta.mean) <= 0 and task_name not in UNLISTED:
                failing.append((task_name, method))
            scores = [_headline(r) for r in runs]
            lines.append(
                f"| {_display(runs, method)} | {len(runs)} | {_mean_sd(scores)} | {delta.text()} | {delta.p:.3f} |"
            )
        lines.append("")
    return failing


def incomplete(
    cells: dict, methods: Sequence[str], tasks: Sequence[tuple[str, str]], prefix: str = ""
) -> list[str]:
    """The (task, method) cells with fewer records than seeds, as ``"<prefix>method on task (n/3)"``: no
    verdict is given while any is missing."""
    return [
        f"{prefix}{m} on {t} ({len(cells.get((t, m), []))}/{len(SEEDS)})"
        for _, t in tasks
        for m in methods
        if len(cells.get((t, m), [])) < len(SEEDS)
    ]


def _verdict(missing: list[str], failing: list[tuple[str, str]], passed: str, failed: str) -> str:
    if missing:
        return "No verdict yet: records missing for " + ", ".join(missing) + "."
    if failing:
        return failed + ", ".join(f"{m} on {t}" for t, m in failing) + "."
    return passed


def _nan_zero(metric: Metric) -> Metric:
    """The metric with an undefined value (Pearson of a constant) read as 0."""

    def wrapped(predictions: list[str], references: list[str]) -> float:
        value = metric(predictions, references)
        return 0.0 if value is None or not np.isfinite(value) else value

    return wrapped


def plain_section(cells: dict, plain: dict, lines: list[str]) -> list[tuple[str, str]]:
    """ptbench's quick PT and LoRA against the plain-PEFT runs of the same budget; returns the cells where
    ptbench's mean is below the plain run's."""
    behind = []
    rows: dict[str, int] = {}
    lines += [
        "| task | method | ptbench (mean ± sd) | plain PEFT (mean ± sd) | ptbench − PEFT [95% CI] | "
        "seeds with the same test predictions |",
        "|---|---|---|---|---|---|",
    ]
    for suite, task_name in TASKS:
        _, metric = _metric(suite, task_name)
        for method in PLAIN_METHODS:
            ours, theirs = cells.get((task_name, method), []), plain.get((task_name, method), [])
            if not ours or not theirs:
                lines.append(f"| {task_name} | {method} | - | - | - | - |")
                continue
            references = _predictions(ours[0])[1]
            rows[task_name] = len(references)
            a = [_predictions(r)[0] for r in ours]
            b = [r["predictions"] for r in theirs if "predictions" in r]
            delta = bootstrap_delta(a, b, references, _nan_zero(metric)) if b else None
            ours_s = [_headline(r) for r in ours]
            theirs_s = [r["test"][r["headline"]] for r in theirs]
            if np.mean(ours_s) < np.mean(theirs_s):
                behind.append((task_name, method))
            lines.append(
                f"| {task_name} | {method} | {_mean_sd(ours_s)} | {_mean_sd(theirs_s)} | "
                f"{delta.text() if delta else '-'} | {same_predictions(ours, theirs)} |"
            )
    lines.append("")
    if rows:
        fewest = min(rows, key=rows.get)
        lines += [
            "Test rows per task: "
            + ", ".join(f"{t} {n}" for t, n in rows.items())
            + f". On {fewest} one test "
            f"row is {100 / rows[fewest]:.1f} points, so a gap of a point or two between the means is under one "
            f"row per seed: whether ptbench is at or above the plain run there is close to a coin flip, and "
            "only the interval says anything.",
            "",
        ]
    return behind


def same_predictions(ours: list[dict], theirs: list[dict]) -> str:
    """``"k of n"``: of the n seeds both sides ran, the k whose every test prediction is the same (given the same
    recipe on one machine, ptbench and the plain script train bit for bit alike)."""
    plain_by_seed = {r["seed"]: r.get("predictions") for r in theirs}
    pairs = [
        (_predictions(r)[0], plain_by_seed[r["spec"]["seed"]])
        for r in ours
        if r["spec"]["seed"] in plain_by_seed
    ]
    return f"{sum(a == b for a, b in pairs)} of {len(pairs)}"


def machines(records: list[dict], plain_rows: list[dict]) -> str:
    """The machines both sides ran on (``env.platform`` and ``env.cpu_model`` of the records, ``machine`` of the
    plain rows): a run's result depends on the machine, so a comparison means most when they are the same."""

    def name(env: dict) -> str:
        cpu = ", ".join(str(env[k]) for k in ("cpu_model", "cpu_capability") if env.get(k))
        return f"{env.get('platform')} ({cpu or 'CPU not recorded'})"

    def names(envs: list[dict]) -> set[str]:
        return {name(e) for e in envs if e}

    ours = names([r.get("env") or {} for r in records])
    theirs = names([r.get("machine") or {} for r in plain_rows])
    missing = sum(1 for r in plain_rows if not r.get("machine"))
    text = f"ptbench's records ran on {', '.join(sorted(ours)) or 'an unrecorded machine'}"
    text += f"; the plain rows on {', '.join(sorted(theirs))}" if theirs else ""
    text += f" ({missing} plain rows name no machine)" if missing else ""
    return text + "."


def earlier_section(cells: dict, earlier: dict, lines: list[str]) -> None:
    """Each method and task: today's quick recipe against the harness's earlier one (``EARLIER_RECIPE``), the
    difference paired over seeds' test rows."""
    lines += [
        "| task | method | PEFT's recipe (mean ± sd) | earlier recipe (mean ± sd) | PEFT's − earlier [95% CI] | p |",
        "|---|---|---|---|---|---|",
    ]
    for suite, task_name in TASKS:
        _, metric = _metric(suite, task_name)
        for method in METHODS:
            now, before = cells.get((task_name, method), []), earlier.get((task_name, method), [])
            if not now or not before:
                continue
            references = _predictions(now[0])[1]
            delta = bootstrap_delta(
                [_predictions(r)[0] for r in now], [_predictions(r)[0] for r in before], references, metric
            )
            lines.append(
                f"| {task_name} | {method} | {_mean_sd([_headline(r) for r in now])} | "
                f"{_mean_sd([_headline(r) for r in before])} | {delta.text()} | {delta.p:.3f} |"
            )
    lines.append("")


def decoder_section(cells: dict, lines: list[str]) -> None:
    lines += [
        "| method | seeds | SST-2 test accuracy (mean ± sd) | training s/run (mean) |",
        "|---|---|---|---|",
    ]
    for method in DECODER_METHODS:
        runs = cells.get(("sst2", method), [])
        scores = [_headline(r) for r in runs]
        train = f"{np.mean([r['train_time_s'] for r in runs]):.0f}" if runs else "-"
        lines.append(f"| {_display(runs, method)} | {len(runs)} | {_mean_sd(scores)} | {train} |")
    lines.append("")


def write_page(
    results: Path, decoder_results: Path, plain_path: Path, out: Path, report_dir: Path, earlier_results: Path
) -> None:
    grid = grid_run_ids(METHODS, "quick", TASKS)
    earlier_grid = grid_run_ids(METHODS, "quick", TASKS, EARLIER_RECIPE)
    earlier = by_cell([r for r in load_records(earlier_results) if r["run_id"] in earlier_grid])
    records = [r for r in load_records(results) if r["run_id"] in grid]
    decoder_grid = grid_run_ids(DECODER_METHODS, "quick-decoder", (("glue", "sst2"),))
    decoder = [r for r in load_records(decoder_results) if r["run_id"] in decoder_grid]
    cells = by_cell(records)
    listed = {task for _, task in TASKS}
    plain = {key: rows for key, rows in load_plain(plain_path).items() if key[0] in listed}
    if records:
        subprocess.run(
            ["bench", "report", "--results", str(results), "--out", str(report_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    today = dt.date.today().isoformat()
    plain_rows = [r for rows in plain.values() for r in rows]
    lines = [
        "# Results on a CPU",
        "",
        f"Made by `python scripts/results_page.py` on {today}, on a 2-core CPU machine without a GPU, from "
        f"{len(records)} MiniLM records, {len(decoder)} SmolLM2 records and {len(plain_rows)} plain-PEFT runs. "
        f"Wall time: MiniLM {_busy_s(records) / 60:.0f} min with at least one run going (gaps between sessions "
        f"left out; {_wall_s(records) / 60:.0f} min summed over runs, which ran {_workers(records)} at a time), "
        f"SmolLM2 {_busy_s(decoder) / 60:.0f} min ({_wall_s(decoder) / 60:.0f} min summed), plain PEFT "
        f"{sum(r['train_time_s'] for r in plain_rows) / 60:.0f} min of training. Libraries (the records' "
        f"`env.packages`): {_packages(records + decoder)} (`results/constraints.txt`); a prompt-tuning run on "
        "another machine's CPU can end on other predictions ([a run depends on the machine]"
        "(quick-recipe.md#a-run-depends-on-the-machine)).",
        "",
        "Quick presets (`--preset quick`: MiniLM, 1,000 training rows, 200 steps of 16; `quick-decoder`: SmolLM2, "
        "100 steps of 8) as they ship, nothing overridden; seeds 42, 43, 44; test scores on the protocol's test "
        "rows (at most 500). The MiniLM recipe is PEFT's own (a constant rate without warm-up, the checkpoint's "
        "dropout, AdamW's decay 0.01 on everything trained, the prompt in front of `[CLS]`, the last step kept), "
        "so ptbench's PT and LoRA are the plain PEFT run; [the quick recipe](quick-recipe.md) says why, and what "
        "the harness's earlier recipe scored instead. SmolLM2 keeps its best dev checkpoint. Intervals are 95% "
        "hierarchical bootstraps (seeds and test rows resampled together, paired over rows), so seed-to-seed "
        "spread counts.",
        "",
        "## What this page cannot show",
        "",
        "- These are small backbones (MiniLM, 22.7M parameters; SmolLM2, 135M) on CPU budgets of a few hundred "
        "steps: the ranking of methods here need not hold on T5-Base at the papers' 30,000+ steps.",
        "- No T5 weights exist offline on this machine, so nothing here is comparable to the papers' tables.",
        "- Three seeds give wide intervals; a difference inside them is not a finding.",
        "- STS-B is not among the quick examples: in 200 steps on MiniLM neither ptbench nor a plain PEFT run "
        "reaches a Pearson clearly above 0 ([the quick recipe](quick-recipe.md#sts-b)); MRPC is shown but left "
        "out of the verdict on the majority class (its table below says why); RTE was not "
        "tried at this budget (the README's earlier example had every method at its majority class).",
        "",
        "## MiniLM: every method against the trivial baseline",
        "",
    ]
    failing = minilm_section(cells, lines)
    lines += [
        _verdict(
            incomplete(cells, METHODS, TASKS),
            failing,
            "Every listed method beats the baseline on every listed task ("
            + ", ".join(t for _, t in TASKS if t not in UNLISTED)
            + "; mean over seeds above the majority class; STS-B: the interval's lower end above 0).",
            "Not above the baseline: ",
        ),
        "",
        "## ptbench against a plain PEFT run of the same budget",
        "",
        "The plain run (`scripts/plain_peft.py`): the same rows, steps, batch, prompt length and learning rate, "
        "PEFT's defaults (random prompt before `[CLS]`, LoRA r=8 α=8 on q/v), one rate for everything, constant "
        "rate, no warm-up, last step kept, raw sentences as BERT pairs. " + machines(records, plain_rows),
        "",
    ]
    behind = plain_section(cells, plain, lines)
    lines += [
        _verdict(
            incomplete(cells, PLAIN_METHODS, TASKS) + incomplete(plain, PLAIN_METHODS, TASKS, "plain "),
            behind,
            "ptbench's mean is at least the plain run's on every task.",
            "ptbench's mean is below the plain run's: ",
        )
        + (
            " With the quick recipe ptbench's PT and LoRA train bit for bit as the plain run on one machine "
            "([the quick recipe](quick-recipe.md#ptbench-with-pefts-recipe-is-the-plain-run)); where a seed's "
            "predictions differ, the two sides ran on different machines or library versions "
            "([a run depends on the machine](quick-recipe.md#a-run-depends-on-the-machine))."
            if behind
            else ""
        ),
        "",
    ]
    if earlier:
        lines += [
            "## The harness's earlier recipe",
            "",
            "Until 2026-12-07 the quick preset trained with the harness's own recipe (linear decay after 20 "
            "warm-up steps, the backbone's dropout off, the best of two dev evaluations kept, PT's prompt from "
            f"vocabulary rows after `[CLS]`); its records, made on earlier machines, are in `{earlier_results}`. "
            "The same runs with today's recipe, paired over test rows "
            "([why the recipe changed](quick-recipe.md#what-the-quick-preset-ships)):",
            "",
        ]
        earlier_section(cells, earlier, lines)
    lines += ["## SmolLM2-135M (decoder, label scoring): PT, DePT, EPT on SST-2", ""]
    decoder_section(by_cell(decoder), lines)
    if records:
        rel = os.path.relpath(report_dir, out.parent)
        lines += [
            "## Figures and the significance table",
            "",
            f"![trade-off]({rel}/figures/tradeoff_params.png)",
            "",
            "Average test score against trainable parameters (log axis), mean over seeds. It shows where each "
            "method sits in size and score on this backbone and budget; it cannot say which method is better on "
            "T5-Base, and differences inside the intervals above are not findings.",
            "",
            f"![learning curves]({rel}/figures/curves.png)",
            "",
            "Training loss against step, one line per method, mean and band over the seeds: whether a method's "
            "loss was still falling when its 200 steps ended (every run evaluated dev once, at its last step, so "
            "there is no dev curve).",
            "",
            f"The full report of the MiniLM records (every figure, learning curves, tables): `{rel}/`.",
            "",
        ]
    out.write_text("\n".join(lines))


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
