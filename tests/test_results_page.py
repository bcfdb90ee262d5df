"""The results page's arithmetic (scripts/results_page.py, through bench report's library: bench/report/stats.py,
page_sections.py, provenance.py): the majority baseline and the hierarchical bootstrap that lets seed-to-seed
spread widen the interval."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from bench.report import page_sections as sections
from bench.report import provenance
from bench.report.stats import majority_label, resample_hierarchical, same_predictions

_spec = importlib.util.spec_from_file_location(
    "results_page", Path(__file__).parents[1] / "scripts" / "results_page.py"
)
page = importlib.util.module_from_spec(_spec)
sys.modules["results_page"] = page  # dataclasses look their module up there
_spec.loader.exec_module(page)


def accuracy(predictions: list[str], references: list[str]) -> float:
    return 100.0 * float(np.mean([p == r for p, r in zip(predictions, references, strict=True)]))


def test_majority_label_is_the_most_frequent_target():
    assert majority_label(["1", "0", "1", "1", "0"]) == "1"
    assert majority_label(["2", "0", "2", "0"]) == "0"  # ties: the smallest string


def _noisy(references: list[str], correct: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [r if rng.random() < correct else ("0" if r == "1" else "1") for r in references]


def test_a_clear_gain_over_the_majority_class_has_an_interval_above_zero():
    rng = np.random.default_rng(1)
    refs = [str(v) for v in rng.integers(0, 2, 400)]
    seeds = [_noisy(refs, 0.85, s) for s in range(3)]
    majority = [["1"] * len(refs)]
    delta = resample_hierarchical(accuracy, seeds, majority, refs, 300)
    expected = np.mean([accuracy(s, refs) for s in seeds]) - accuracy(majority[0], refs)
    assert abs(delta.delta - expected) < 1e-9
    assert 0 < delta.low < delta.delta < delta.high and delta.p < 0.01


def test_seed_spread_widens_the_interval():
    """Same mean, one side's seeds far apart: the interval must be wider than with consistent seeds."""
    rng = np.random.default_rng(2)
    refs = [str(v) for v in rng.integers(0, 2, 300)]
    steady = [_noisy(refs, 0.75, s) for s in range(3)]
    spread = [_noisy(refs, c, s) for s, c in zip(range(3), (0.55, 0.75, 0.95), strict=True)]
    base = [_noisy(refs, 0.75, 10)]
    narrow = resample_hierarchical(accuracy, steady, base, refs, 300)
    wide = resample_hierarchical(accuracy, spread, base, refs, 300)
    assert (wide.high - wide.low) > 1.5 * (narrow.high - narrow.low)


def test_no_difference_is_not_significant():
    rng = np.random.default_rng(3)
    refs = [str(v) for v in rng.integers(0, 2, 300)]
    a = [_noisy(refs, 0.7, s) for s in range(3)]
    b = [_noisy(refs, 0.7, s + 100) for s in range(3)]
    delta = resample_hierarchical(accuracy, a, b, refs, 300)
    assert delta.low < 0 < delta.high and delta.p > 0.05


def test_the_page_reads_only_the_grids_own_runs(data_dir, monkeypatch):
    """The prompt-length sweep shares the results folder; only its l = 20 runs are the grid's."""
    from bench.planning.plan import RunRequest, parse_sweep, plan

    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    ids = page.grid_run_ids(("pt",), "quick", (("glue", "sst2"),))
    request = RunRequest("glue", ["sst2"], ["pt"], list(page.SEEDS), "quick", data_dir=str(data_dir))
    request.sweeps = [parse_sweep("pt.num_tokens=5,20")]
    swept = {spec.method_config["num_tokens"]: spec.run_id for spec in plan(request) if spec.seed == 42}
    assert len(ids) == len(page.SEEDS) and swept[20] in ids and swept[5] not in ids


def test_wall_time_busy_and_summed():
    runs = [
        {
            "started_at": "2026-12-02T04:00:00",
            "finished_at": "2026-12-02T04:10:00",
            "contention": {"workers": 2},
        },
        {
            "started_at": "2026-12-02T04:01:00",
            "finished_at": "2026-12-02T04:12:00",
            "contention": {"workers": 2},
        },
    ]
    assert provenance.busy_s(runs) == 12 * 60 and provenance.wall_s(runs) == 21 * 60
    # a later session's run: the hours between the sessions are not wall time the grid took
    later = {"started_at": "2026-12-02T09:00:00", "finished_at": "2026-12-02T09:05:00"}
    assert provenance.busy_s([*runs, later]) == 17 * 60 and provenance.wall_s([*runs, later]) == 26 * 60
    assert provenance.workers(runs) == "2" and provenance.workers([*runs, {"contention": None}]) == "1-2"


def _record(predicted: list[str], reference: list[str], seed: int) -> dict:
    score = accuracy(predicted, reference)
    return {
        "spec": {"seed": seed},
        "metrics": {"headline": {"test": score}},
        "predictions": {"test": {"predicted": predicted, "reference": reference}},
    }


def test_plain_section_flags_a_cell_behind_the_plain_run_and_names_the_smallest_task(monkeypatch):
    """ptbench below the plain run on CB is listed as behind, and the page says what one of CB's rows is worth."""
    monkeypatch.setattr(sections, "TASKS", (("superglue", "cb"),))
    monkeypatch.setattr(sections, "PLAIN_METHODS", ("pt",))
    # Plain accuracy instead of CB's own metric (sklearn, slow under 1,000 resamples).
    monkeypatch.setattr(sections, "_metric", lambda suite, task: (None, accuracy))
    refs = ["entailment", "contradiction"] * 14  # 28 rows, as CB's test split
    worse = ["entailment"] * 28  # 50.0
    better = list(refs[:-1]) + ["neutral"]  # 27 of 28
    ours = {("cb", "pt"): [_record(worse, refs, s) for s in (42, 43, 44)]}
    plain = {("cb", "pt"): [{"test": {"accuracy": accuracy(better, refs)}, "headline": "accuracy",
                             "predictions": better, "seed": s} for s in (42, 43, 44)]}  # fmt: skip
    lines: list[str] = []
    assert sections.plain_section(ours, plain, lines) == [("cb", "pt")]
    text = "\n".join(lines)
    assert "| cb | pt | 50.0 ± 0.0 | 96.4 ± 0.0 |" in text and text.count("| 0 of 3 |") == 1
    assert "On cb one test row is 3.6 points" in text


def test_same_predictions_counts_the_seeds_whose_every_test_row_agrees():
    """The twin column: ptbench and the plain run agree row for row on a seed, or they do not (matched by seed)."""
    refs = ["1", "0", "1", "0"]
    ours = [_record(["1", "0", "1", "1"], refs, s) for s in (42, 43, 44)]
    plain = [{"seed": s, "predictions": ["1", "0", "1", "1"]} for s in (44, 43, 42)]
    assert same_predictions(ours, plain) == "3 of 3"
    plain[0]["predictions"] = ["1", "0", "1", "0"]  # seed 44 differs in its last row
    assert same_predictions(ours, plain) == "2 of 3"
    assert same_predictions(ours, plain[1:]) == "2 of 2"  # a seed the plain side did not run


def test_machines_names_both_sides_and_plain_rows_without_one():
    env = {"platform": "Linux-x", "cpu_model": "AMD EPYC", "cpu_capability": "AVX2"}
    text = provenance.machines([{"env": env}, {"env": {"platform": "Linux-y"}}], [{"machine": env}, {}])
    assert "ptbench's records ran on Linux-x (AMD EPYC, AVX2), Linux-y (CPU not recorded)" in text
    assert "the plain rows on Linux-x (AMD EPYC, AVX2) (1 plain rows name no machine)." in text


def test_no_verdict_while_a_cell_misses_seeds():
    """A cell with fewer records than seeds blocks the page's verdict instead of passing silently."""
    cells = {("cb", "pt"): [{}] * 3, ("cb", "lora"): [{}]}
    missing = sections.incomplete(cells, ("pt", "lora", "dept"), (("superglue", "cb"),))
    assert missing == ["lora on cb (1/3)", "dept on cb (0/3)"]
    assert sections.verdict(missing, [], "all good", "bad: ").startswith(
        "No verdict yet: records missing for lora"
    )
    assert sections.verdict([], [("cb", "pt")], "all good", "bad: ") == "bad: pt on cb."
    assert sections.verdict([], [], "all good", "bad: ") == "all good"


def test_the_page_names_every_library_version_its_records_ran_with():
    env = {"packages": {"torch": "2.13.0+cpu", "transformers": "5.24.0", "peft": "0.21.2"}}
    newer = {"packages": {**env["packages"], "transformers": "5.25.0"}}
    text = provenance.packages([{"env": env}, {"env": newer}, {"env": None}])
    assert text == "torch 2.13.0+cpu, transformers 5.24.0 / 5.25.0, peft 0.21.2"
    assert provenance.packages([{}]) == "not recorded"


def test_the_constraints_file_pins_what_the_committed_records_ran_with():
    """results/constraints.txt is how to add to or reproduce the records; it must name their versions."""
    import json

    root = Path(__file__).parents[1] / "results"
    lines = (root / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    allowed = {name: {version} for name, version in pins.items()}
    for line in lines:  # "# bit-for-bit: NAME==VERSION": measured to train the same runs as the pin
        if line.startswith("# bit-for-bit: "):
            name, version = line.removeprefix("# bit-for-bit: ").split("==")
            allowed[name].add(version)
    records = [json.loads(p.read_text()) for p in sorted(root.glob("cpu-*/*.json"))]
    assert records
    for rec in records:
        packages = rec["env"]["packages"]
        assert packages["torch"].split("+")[0] == pins["torch"], rec["run_id"]
        for name in ("transformers", "peft", "tokenizers"):
            assert packages[name] in allowed[name], (rec["run_id"], name)


def test_an_unlisted_task_is_shown_with_its_reason_but_left_out_of_the_verdict(monkeypatch):
    """MRPC-like: below the majority class on an unlisted task is shown, not failed; on a listed task it fails."""
    from types import SimpleNamespace

    monkeypatch.setattr(sections, "TASKS", (("glue", "mrpc"), ("superglue", "cb")))
    monkeypatch.setattr(sections, "METHODS", ("pt",))
    monkeypatch.setattr(sections, "UNLISTED", {"mrpc": "not learned at this budget"})
    task = SimpleNamespace(is_regression=False, headline_metric="accuracy")
    monkeypatch.setattr(sections, "_metric", lambda suite, name: (task, accuracy))
    refs = ["1", "1", "0", "0"]
    below = ["0", "0", "1", "1"]  # 0.0, under the majority class's 50.0

    def cell(seeds):
        return [{**_record(below, refs, s), "spec": {"seed": s, "train": {}}} for s in seeds]

    cells = {("mrpc", "pt"): cell((42, 43, 44)), ("cb", "pt"): cell((42, 43, 44))}
    lines: list[str] = []
    assert sections.minilm_section(
        cells, lines, lambda suite, name, n: ["1", "1", "0"]
    )  # majority '1' == [("cb", "pt")]
    text = "\n".join(lines)
    assert "Shown, not a listed task: not learned at this budget." in text
    assert text.index("not a listed task") < text.index("### cb")  # under MRPC's header, not CB's


def test_the_page_names_the_registered_methods_it_does_not_run():
    """The page says which registered methods its grids leave out (the script reads them from the registry)."""
    from bench.report.results_page import render

    text = render([], [], {}, {}, lambda *a: [], "results/earlier", "results", unrun=["smop", "lamp"])
    assert "- Registered methods not run on this page: `smop`, `lamp`" in text
    assert "not run on this page" not in render([], [], {}, {}, lambda *a: [], "results/earlier", "results")
