"""``bench report``: numbers in the tables against records built here, the bootstrap on known cases, every
figure file, rebuild determinism, the HTML page in a real (headless) browser, and ``--sweep`` planning."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.build import ReportOptions, build_report
from bench.report.load import Filters, load_runs
from bench.report.stats import bootstrap_examples, bootstrap_seeds
from bench.results import empty_record, record_path, write_json_atomic
from bench.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]
TRAIN = {"batch_size": 16, "max_steps": 30}
CONFIGS = {
    "pt": {"num_tokens": 20},
    "dept": {"num_tokens": 12, "rank": 6},
    "ept": {"num_tokens": 12, "rank": 6},
}
METRIC = {"rte": "accuracy", "mrpc": "accuracy", "cola": "mcc", "cb": "accuracy"}
SUITE = {"rte": "glue", "mrpc": "glue", "cola": "glue", "cb": "superglue"}


def make_record(
    out: Path,
    method: str,
    task: str,
    seed: int,
    score: float | None,
    *,
    config: dict | None = None,
    status: str = "ok",
    trainable: int = 7680,
    train_time: float = 10.0,
    step_ms: float = 50.0,
    rss_mib: float = 1000.0,
    predictions: tuple[list[str], list[str]] | None = None,
    gates: list | None = None,
    model: str = "minilm",
    extra: dict | None = None,
) -> dict:
    """One record written into ``out``; ``extra`` updates top-level keys (``contention``, ``env``) and
    ``metrics`` entries (``{"metrics": {"loss_history": [...]}}``) of an ok record."""
    spec = RunSpec(
        suite=SUITE[task],
        task=task,
        method=method,
        method_config=config or CONFIGS[method],
        model=model,
        preset="quick",
        seed=seed,
        train=TRAIN,
        data={"source": "local", "dir": "/data"},
    )
    rec = empty_record(spec)
    rec["status"] = status
    if status == "ok":
        name = METRIC[task]
        rec["metrics"].update(
            test={name: score}, dev={name: score}, headline={"name": name, "dev": score, "test": score},
            dev_history=[{"step": s, "metrics": {name: score - 30 + s}, "loss": 1.0 / s} for s in (10, 20, 30)],
        )  # fmt: skip
        rec.update(
            trainable_params=trainable, train_time_s=train_time, step_time_ms_median=step_ms,
            peak_rss_train_bytes=int(rss_mib * 2**20), steps=30,
        )  # fmt: skip
        if predictions:
            rec["predictions"] = {"test": {"predicted": predictions[0], "reference": predictions[1]}}
        if gates is not None:
            rec["method_record"] = {"gate_weights_best": gates}
        for key, value in (extra or {}).items():
            if key == "metrics":
                rec["metrics"].update(value)
            else:
                rec[key] = value
    else:
        rec["error"] = "RuntimeError: boom"
    write_json_atomic(record_path(out, spec), rec)
    return rec


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """pt, dept, ept on glue rte+mrpc and superglue cb, seeds 42 and 43, with known scores."""
    out = tmp_path_factory.mktemp("report") / "results"
    refs = ["0", "1"] * 10
    scores = {
        ("pt", "rte"): (60.0, 64.0),
        ("pt", "mrpc"): (70.0, 74.0),
        ("pt", "cb"): (50.0, 50.0),
        ("dept", "rte"): (None, 63.0),  # seed 42 failed
        ("dept", "mrpc"): (71.0, 71.0),
        ("dept", "cb"): (55.0, 57.0),
        ("ept", "rte"): (66.0, 68.0),
        ("ept", "mrpc"): (72.0, 76.0),
        ("ept", "cb"): (60.0, 62.0),
    }
    for (method, task), values in scores.items():
        for seed, score in zip((42, 43), values, strict=True):
            if score is None:
                make_record(out, method, task, seed, None, status="failed")
                continue
            # ept always right on rte's 20 test examples, pt right on half: a known example-level bootstrap
            preds = None
            if task == "rte" and method == "ept":
                preds = (list(refs), refs)
            elif task == "rte" and method == "pt":
                preds = (refs[:10] + ["1" if r == "0" else "0" for r in refs[10:]], refs)
            gates = [[0.2, 0.3, 0.5]] if method == "ept" else None
            make_record(
                out, method, task, seed, score, predictions=preds, gates=gates,
                trainable={"pt": 7680, "dept": 7680, "ept": 58372}[method],
                train_time={"pt": 10.0, "dept": 9.0, "ept": 8.0}[method],
            )  # fmt: skip
    # a different setting of pt on rte: its own row, never averaged into "pt"
    make_record(out, "pt", "rte", 42, 10.0, config={"num_tokens": 10})
    return out


@pytest.fixture(scope="module")
def report(records) -> tuple[Path, ReportOptions, dict[str, Path]]:
    """One full report (``--vs ept --with-published``) shared by the tests that only read it."""
    options = ReportOptions(records, records.parent / "reports", vs="ept", with_published=True, resamples=300)
    return options.out, options, build_report(options)


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).set_index("row")


def test_tables_numbers_best_and_failed(report):
    out = report[0]
    table = _csv(out / "results.csv")
    assert sorted(table.index) == ["dept", "ept", "pt (num_tokens=10)", "pt (num_tokens=20)"]
    pt = table.loc["pt (num_tokens=20)"]
    assert pt["rte_mean"] == 62.0 and pt["rte_std"] == pytest.approx(math.sqrt(8)) and pt["rte_n"] == 2
    # GLUE avg per seed: (60+70)/2=65, (64+74)/2=69 -> 67 ± 2.83 (n=2); SuperGLUE avg = cb alone
    assert pt["glue_avg_mean"] == 67.0 and pt["glue_avg_std"] == pytest.approx(math.sqrt(8))
    assert pt["superglue_avg_mean"] == 50.0 and pt["superglue_avg_std"] == 0.0
    # the failed seed is not averaged: dept rte is seed 43 alone; its GLUE avg has unequal seeds -> no std
    dept = table.loc["dept"]
    assert dept["rte_mean"] == 63.0 and dept["rte_n"] == 1 and math.isnan(dept["rte_std"])
    assert dept["glue_avg_mean"] == pytest.approx((63.0 + 71.0) / 2) and math.isnan(dept["glue_avg_std"])
    other = table.loc["pt (num_tokens=10)"]  # one run, its own row, missing mrpc -> no GLUE average
    assert other["rte_mean"] == 10.0 and other["rte_n"] == 1 and math.isnan(other["glue_avg_mean"])
    # best per column: ept on scores, the cheapest on costs
    assert table["rte_best"].to_dict() == {
        "dept": False,
        "ept": True,
        "pt (num_tokens=10)": False,
        "pt (num_tokens=20)": False,
    }
    assert table.loc["ept", "glue_avg_best"] and table.loc["ept", "superglue_avg_best"]
    assert table.loc["ept", "train_time_s_best"] and not table.loc["pt (num_tokens=20)", "train_time_s_best"]
    assert (
        table.loc["pt (num_tokens=20)", "trainable_params_best"]
        and table.loc["dept", "trainable_params_best"]
    )
    md = (out / "results.md").read_text()
    # columns in registry order (mrpc before rte); † only where the example-level bootstrap says p < 0.05
    assert "| pt (num_tokens=20) | 72.0 ± 2.8 (2) | 62.0 ± 2.8 (2)† | 67.0 ± 2.8 (2) | 50.0 ± 0.0 (2) |" in md
    assert "| ept | **74.0 ± 2.8** (2) | **67.0 ± 1.4** (2) | **70.5 ± 2.1** (2) |" in md
    failed = (out / "failed.md").read_text()
    assert "| dept | glue/rte | 42 | RuntimeError: boom |" in failed
    assert "RuntimeError: boom" in md
    tex = (out / "results.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{70.5 $\pm$ 2.1} (2)" in tex


def test_bootstrap_known_cases():
    refs = ["0", "1"] * 10

    def acc(p, r):
        return 100.0 * float(np.mean([a == b for a, b in zip(p, r, strict=True)]))

    wrong = ["1" if r == "0" else "0" for r in refs]
    result = bootstrap_examples(acc, [refs], [wrong], refs, resamples=500, seed=0)
    assert (result.delta, result.low, result.high) == (100.0, 100.0, 100.0)
    assert result.p == pytest.approx(2 / 501) and result.unit == "examples" and result.n == 20
    same = bootstrap_examples(acc, [refs, refs], [refs, refs], refs, resamples=200)
    assert (same.delta, same.low, same.high, same.p) == (0.0, 0.0, 0.0, 1.0)
    half = bootstrap_examples(acc, [refs], [refs[:10] + wrong[10:]], refs, resamples=2000, seed=1)
    assert half.delta == 50.0 and half.low < 50.0 < half.high and half.p < 0.01
    # over seeds: constant differences give a point interval; mixed signs give p = 1-ish
    seeds = bootstrap_seeds([70, 72, 74], [68, 70, 72], resamples=300)
    assert (seeds.delta, seeds.low, seeds.high, seeds.unit) == (2.0, 2.0, 2.0, "seeds")
    assert seeds.p == pytest.approx(2 / 301)
    mixed = bootstrap_seeds([1.0, 0.0], [0.0, 1.0], resamples=1000, seed=0)
    assert mixed.delta == 0.0 and mixed.low == -1.0 and mixed.high == 1.0 and mixed.p == 1.0
    with pytest.raises(ValueError, match="2 common seeds"):
        bootstrap_seeds([1.0], [0.0])


def test_comparison_table_units(report):
    out = report[0]
    comp = pd.read_csv(out / "comparison.csv").set_index(["row", "task"])
    rte = comp.loc[("pt (num_tokens=20)", "rte")]
    # both stored predictions on 2 seeds each: seeds then examples, ept 100 % vs pt 50 % on every seed
    assert rte["unit"] == "seeds+examples" and rte["delta"] == 50.0 and rte["n"] == 4 and rte["p"] < 0.01
    mrpc = comp.loc[("pt (num_tokens=20)", "mrpc")]  # no predictions: Welch over seeds, 72,76 vs 70,74
    assert mrpc["unit"] == "seeds" and mrpc["delta"] == 2.0 and mrpc["ci_low"] < 0 < mrpc["ci_high"]
    assert mrpc["p"] == pytest.approx(0.6, abs=0.05) and mrpc["markable"]
    assert comp.loc[("dept", "rte"), "note"].startswith("fewer than 2 seeds per side (2 vs 1)")
    assert "†" in (out / "results.md").read_text()


def test_figures_and_rebuild_determinism(report):
    out, options, written = report
    names = [
        "tradeoff_params",
        "tradeoff_time",
        "tradeoff_memory",
        "curves",
        "prompt_length",
        "per_task",
        "gates",
    ]
    for name in names:
        for ext in ("png", "pdf"):
            path = out / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    published = (out / "published.md").read_text()
    assert "DePT [published]" in published and "| yes |" in published
    assert "| EPT" not in published  # no EPT row (docs/reports.md#published-numbers); ACCEPT's is not one
    first = {name: path.read_bytes() for name, path in written.items()}
    shutil.rmtree(out)
    again = build_report(options)
    assert sorted(again) == sorted(first)
    changed = [name for name, path in again.items() if path.read_bytes() != first[name]]
    assert changed == [], f"not byte-identical after a rebuild: {changed}"


@pytest.mark.slow
def test_report_cli_filters_and_no_torch(records, tmp_path):
    """The CLI end to end in a fresh interpreter: filters keep only the asked-for runs; torch is never loaded."""
    out = tmp_path / "rep"
    code = f"""
import sys
from bench.cli import main
assert main(["report", "--results", {str(records)!r}, "--out", {str(out)!r}, "--tasks", "rte",
             "--methods", "pt,dept", "--bootstrap-samples", "50"]) == 0
assert "torch" not in sys.modules, "bench report imported torch"
assert main(["report", "--results", {str(records)!r}, "--out", {str(out)!r}, "--vs", "eptt"]) == 2
assert main(["report", "--results", {str(records)!r}, "--out", {str(out)!r}, "--methods", "nope"]) == 2
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--vs 'eptt' names no method or row" in proc.stderr
    assert "no run records in" in proc.stderr
    table = _csv(out / "results.csv")  # the first, successful call's report (the later calls failed early)
    assert sorted(table.index) == ["dept", "pt (num_tokens=10)", "pt (num_tokens=20)"]
    assert [c for c in table.columns if c.endswith("_mean")] == ["rte_mean", "glue_avg_mean"]
    assert not (out / "comparison.md").exists()  # no ept among the rows and no --vs: no comparison


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium found: install it (apt-get install -y chromium), as .ci/run does")


@pytest.mark.slow
def test_html_page_in_browser(report):
    out = report[0]
    page = out / "index.html"
    text = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == 7  # every figure the report wrote, each file present
    assert {Path(src).name for src in sources} == {p.name for p in (out / "figures").glob("*.png")}
    for src in sources:
        assert (out / src).is_file() and (out / src).stat().st_size > 0, src
    runs = load_runs(report[1].results)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert dom.count("<img") == 7 and "<table" in dom and "Paired bootstrap against ept" in dom
    # the drill-down: one <details> per run with its id, status, error, curves table and spec
    assert dom.count('<details class="run"') == len(runs)
    failed = runs.loc[runs["status"] == "failed"].iloc[0]
    block = dom[dom.index(f'id="run-{failed["run_id"]}"') :].split("</details>")[0]
    assert "RuntimeError: boom" in block and "no dev history recorded" in block and '"task": "rte"' in block
    assert "Cost-aware score (PSCP)" in dom and "C_m = 94 GB" in dom
    tables = pd.read_html(io.StringIO(dom)) if _has_lxml() else None
    if tables is not None:
        assert any("rte (accuracy)" in t.columns for t in tables)
    assert "62.0 ± 2.8" in dom


def _has_lxml() -> bool:
    try:
        import lxml  # noqa: F401
    except ImportError:
        return False
    return True


def test_sweep_plans_one_method_per_value():
    from bench.planning.plan import RunRequest, parse_sweep, plan

    request = RunRequest(
        "glue", ["rte"], ["pt", "dept"], [42, 43], "quick", sweeps=[parse_sweep("pt.num_tokens=10,20,50")]
    )
    specs = plan(request)
    pts = sorted((s.method_config["num_tokens"], s.seed) for s in specs if s.method == "pt")
    assert pts == [(10, 42), (10, 43), (20, 42), (20, 43), (50, 42), (50, 43)]
    assert sorted(s.method_config["num_tokens"] for s in specs if s.method == "dept") == [12, 12]
    assert len({s.run_id for s in specs}) == len(specs) == 8
    train = plan(
        RunRequest("glue", ["rte"], ["pt"], [42], "quick", sweeps=[parse_sweep("train.batch_size=8,16")])
    )
    assert sorted(s.train["batch_size"] for s in train) == [8, 16]
    both = plan(
        RunRequest(
            "glue", ["rte"], ["pt", "dept"], [42], "quick",
            sweeps=[parse_sweep("pt.num_tokens=10,20"), parse_sweep("dept.num_tokens=4,8")],
        )
    )  # fmt: skip
    assert sorted((s.method, s.method_config["num_tokens"]) for s in both) == [
        ("dept", 4), ("dept", 8), ("pt", 10), ("pt", 20),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="form method.field=V1,V2"):
        parse_sweep("pt.num_tokens")
    with pytest.raises(ValueError, match="neither a selected method"):
        plan(RunRequest("glue", ["rte"], ["pt"], [42], "quick", sweeps=[parse_sweep("ept.num_tokens=4,8")]))


def test_rows_from_loaded_records(records):
    runs = load_runs(records, Filters(suite=["superglue"]))
    assert set(runs["task"]) == {"cb"} and set(runs["row"]) == {"pt", "dept", "ept"}  # one pt setting here


def test_worker_stores_test_predictions_that_reproduce_the_metric(tiny_t5_dir, data_dir):
    """The record's per-example test strings (for the example-level bootstrap) give back its test metric."""
    from bench.planning.plan import RunRequest, plan
    from bench.worker import execute
    from suites import get_task

    request = RunRequest(
        suite="glue", tasks=["rte"], methods=["pt"], seeds=[7], preset="quick", model=str(tiny_t5_dir),
        data_dir=str(data_dir), max_steps=2, max_train_samples=16,
        overrides={"train": {"max_length": "32", "max_eval_samples": "12", "batch_size": "4"}, "pt": {"num_tokens": "4"}},
    )  # fmt: skip
    (spec,) = plan(request)
    record = execute(spec)
    test = record["predictions"]["test"]
    assert len(test["predicted"]) == len(test["reference"]) == record["data"]["sizes"]["test"] == 12
    recomputed = get_task("rte", "glue").compute_metrics(test["predicted"], test["reference"])
    assert recomputed == record["metrics"]["test"]


def test_prompt_length_compares_a_methods_rows_on_their_shared_tasks():
    """A sweep on SST-2 beside the grid's l = 20 row on SST-2 and MRPC: every PT point is SST-2's, so the figure
    shows the prompt length, not the task mix (MRPC's slower steps and lower score would have bent the l = 20
    point)."""
    import types

    import pandas as pd

    from bench.report.figures import length_points

    def run(row, tokens, task, score, step):
        setting = {"method_config.num_tokens": tokens}
        return {"row": row, "display": "pt", "status": "ok", "suite": "glue", "task": task, "score": score,
                "step_ms": step, "setting": setting}  # fmt: skip

    runs = pd.DataFrame(
        [
            run("pt (l=20)", 20, "sst2", 70.0, 300.0),
            run("pt (l=20)", 20, "mrpc", 60.0, 900.0),
            run("pt (l=5)", 5, "sst2", 80.0, 200.0),
            run("pt (l=5)", 5, "sst2", 78.0, 220.0),
        ]  # fmt: skip
    )
    frame = length_points(types.SimpleNamespace(rows=["pt (l=20)", "pt (l=5)"]), runs).set_index("tokens")
    assert frame.loc[20, "score"] == 70.0 and frame.loc[20, "step_ms"] == 300.0
    assert frame.loc[5, "score"] == 79.0 and frame.loc[5, "step_ms"] == 210.0
