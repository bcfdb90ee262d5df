"""EPT is reported under its variant (``ept[placeholder-v0]``), never as a bare ``ept`` that would read as the
paper's method; a changed design gets ``*``; the label comes from the record (written by the worker) so reports
need no training code, and older records without it still load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.build import ReportOptions, build_report
from bench.report.load import load_runs
from bench.results import record_path, write_json_atomic
from bench.spec import RunSpec
from bench.worker import run_spec
from methods.ept_config import EPTConfig
from methods.registry import config_to_dict, display_name
from tests.test_report import make_record

REPO = Path(__file__).resolve().parents[1]
CHANGED = {"num_tokens": 12, "rank": 6, "fusion": {"attn_dim": 8}}


def _with_name(out: Path, rec: dict) -> None:
    rec["method_record"]["display_name"] = display_name(rec["spec"]["method"], rec["spec"]["method_config"])
    write_json_atomic(record_path(out, RunSpec.from_dict(rec["spec"])), rec)


def test_display_name_from_the_config():
    assert display_name("ept", config_to_dict(EPTConfig())) == "ept[placeholder-v0]"
    assert display_name("ept", {"num_tokens": 40, "rank": 45, "lr": 0.3}) == "ept[placeholder-v0]"  # budgets
    assert display_name("ept", {"fusion": {"attn_dim": 8}}) == "ept[placeholder-v0*]"
    assert display_name("ept", {"reconstruct": "short+proj"}) == "ept[placeholder-v0*]"
    assert display_name("ept", {"ept_variant": "mine", "proj": {"rank": 4}}) == "ept[mine]"
    assert display_name("pt", {"num_tokens": 10}) == "pt"
    assert display_name("ept", {"no_such_field": 1}) == "ept"  # an old record whose config no longer builds


def test_rows_read_the_record_and_failed_or_old_records_follow(tmp_path):
    out = tmp_path / "results"
    for seed, score in ((42, 66.0), (43, 68.0)):
        _with_name(out, make_record(out, "ept", "rte", seed, score))
        _with_name(out, make_record(out, "ept", "rte", seed, score - 5, config=CHANGED))
        make_record(out, "pt", "rte", seed, score - 10)  # an old record: no display_name
    make_record(out, "ept", "rte", 44, None, status="failed")  # failed early: no name, same setting
    runs = load_runs(out)
    rows = dict(zip(runs["run_id"], runs["row"], strict=True))
    # the changed design is its own group: "*" says it is not the variant's design
    assert sorted(set(rows.values())) == ["ept[placeholder-v0*]", "ept[placeholder-v0]", "pt"]
    failed = runs.loc[runs["status"] == "failed", "row"].tolist()
    assert failed == ["ept[placeholder-v0]"]
    assert "ept" not in set(rows.values())

    for rec_path in out.rglob("*.json"):  # keep one EPT row, so the default --vs target exists
        if json.loads(rec_path.read_text())["spec"]["method_config"] == CHANGED:
            rec_path.unlink()
    options = ReportOptions(out, tmp_path / "report", resamples=50)  # no --vs: the default target
    written = build_report(options)
    text = written["results.md"].read_text()
    assert "against ept[placeholder-v0] in a test that counts the seeds" in text
    assert "| ept |" not in text and "| ept[placeholder-v0] |" in text
    assert "ept[placeholder-v0]" in written["comparison.md"].read_text()


def test_the_worker_writes_the_name_even_for_a_failed_run(tmp_path):
    spec = RunSpec(
        suite="glue", task="rte", method="ept", method_config=config_to_dict(EPTConfig()), model="minilm",
        preset="quick", seed=1, train={"max_steps": 1}, data={"source": "local", "dir": str(tmp_path / "none")},
    )  # fmt: skip
    record = run_spec(spec)
    assert record["status"] == "failed"
    assert record["method_record"]["display_name"] == "ept[placeholder-v0]"


@pytest.mark.slow
def test_report_imports_no_training_code(tmp_path):
    out = tmp_path / "results"
    _with_name(out, make_record(out, "ept", "rte", 42, 66.0))
    make_record(out, "pt", "rte", 42, 60.0)
    code = (
        "import sys; from pathlib import Path; from bench.report.build import ReportOptions, build_report; "
        f"build_report(ReportOptions(Path({str(out)!r}), Path({str(tmp_path / 'r')!r}), resamples=20)); "
        "print(sorted(m for m in sys.modules if m.startswith(('methods', 'torch', 'bench.training.trainer'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().replace("'", '"')) == []


def test_the_run_summary_table_shows_the_display_name():
    """``bench run``'s closing table names EPT by its variant too, and keeps a changed design apart."""
    import io

    from bench.grid.ui import summary_table
    from bench.terminal import make_console, show

    def rec(method, display, test):
        return {
            "spec": {"method": method, "task": "rte"},
            "status": "ok",
            "metrics": {"headline": {"test": test}},
            "trainable_params": 10,
            "step_time_ms_median": 1.0,
            "method_record": {"display_name": display} if display else {},
        }

    records = [rec("ept", "ept[placeholder-v0]", 60.0), rec("ept", "ept[placeholder-v0*]", 50.0)]
    records.append(rec("pt", None, 55.0))  # an old record without the name keeps the method's
    console = make_console()
    console.file, console.width = io.StringIO(), 250
    show(console, summary_table(records))
    rows = [
        line.split("│")[1].strip() for line in console.file.getvalue().splitlines() if line.count("│") > 2
    ]
    assert rows == ["ept[placeholder-v0]", "ept[placeholder-v0*]", "pt"]
