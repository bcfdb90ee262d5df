"""PSCP (PEFT-Bench's cost-aware score) on hand-computed values, the FLOP estimate, --pscp-beta, and the ‡ mark
on time and memory cells of runs measured under contention."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.errors import InputError
from bench.report.build import ReportOptions, build_report
from bench.report.pscp import Betas, extra_flops, pscp
from tests.test_report import make_record


def test_formula_by_hand():
    # each cost equal to its constant halves the score (beta 1): 80 -> 40 -> 20 -> 10
    assert pscp(80.0, 5e8, 1e13, 94e9) == pytest.approx(10.0)
    assert pscp(80.0, 5e8, 0.0, 94e9, Betas(1, 1, 0)) == pytest.approx(40.0)
    assert pscp(80.0, 1.5e9, 0.0, 0.0, Betas(0.5, 1, 1)) == pytest.approx(80.0 / 2.0)  # (1 + 3) ** -0.5
    assert pscp(70.0, 0.0, 0.0, 0.0) == 70.0


def test_flops_stated_or_estimated():
    assert extra_flops({"virtual_tokens": 10, "total_params": 22_000_000}) == (4.4e8, True)
    assert extra_flops({"virtual_tokens": 0, "total_params": 22_000_000}) == (
        0.0,
        True,
    )  # merged LoRA, BitFit
    assert extra_flops({"method_record": {"extra_inference_flops": 123.0}, "virtual_tokens": 5}) == (
        123.0,
        False,
    )


def test_betas_parse():
    assert Betas.parse("1,0.5,2") == Betas(1.0, 0.5, 2.0) and Betas.parse(None) == Betas()
    for bad in ("1,1", "a,b,c", "1,-1,1"):
        with pytest.raises(InputError, match="--pscp-beta"):
            Betas.parse(bad)


def test_pscp_table_and_contention_marks(tmp_path):
    out = tmp_path / "results"
    for seed in (42, 43):
        for task, score in (("rte", 60.0), ("mrpc", 70.0)):
            extra = {"virtual_tokens": 10, "total_params": 22_000_000}
            make_record(out, "pt", task, seed, score, rss_mib=1000.0, extra=extra)
            busy = {
                **extra,
                "contention": {  # the record contract's keys (bench/measurement/contention.py REQUIRED_KEYS)
                    "contended": seed == 43,
                    "why": "another process" if seed == 43 else None,
                    "workers": 1,
                    "cpu_time_s": 10.0,
                    "wall_s": 10.0,
                    "cpu_util": 1.0,
                    "loadavg_1m": [3.1, 3.2] if seed == 43 else [1.0, 1.0],  # the rule sees it too
                    "cpu_count": 2,
                },
            }
            make_record(out, "dept", task, seed, score + 10, rss_mib=500.0, extra=busy)
    written = build_report(ReportOptions(out, tmp_path / "rep", pscp_betas=Betas(1, 1, 1), resamples=20))
    table = pd.read_csv(written["pscp.csv"]).set_index("row")
    memory = 1000 * 2**20
    expected = 65.0 / (1 + 7680 / 5e8) / (1 + 4.4e8 / 1e13) / (1 + memory / 94e9)
    assert table.loc["pt", "PSCP"] == pytest.approx(expected, rel=1e-5)
    assert table.loc["pt", "P"] == 65.0 and table.loc["pt", "flops"] == pytest.approx(4.4e8)
    assert (
        table.loc["pt", "flops_estimated"]
        and table.loc["dept", "contended"]
        and not table.loc["pt", "contended"]
    )
    md = written["pscp.md"].read_text()
    assert (
        "C_p = 5e8" in md and "C_f = 10 TFLOPs" in md and "C_m = 94 GB" in md and "betas p=1, f=1, m=1" in md
    )
    assert "4.4e+08 ~" in md
    results = written["results.md"].read_text()
    dept = next(line for line in results.splitlines() if line.startswith("| dept "))
    pt = next(line for line in results.splitlines() if line.startswith("| pt "))
    assert dept.count("‡") == 3 and "‡" not in pt  # train time, ms/step, peak memory of dept only
    assert "‡: time and memory include runs measured under contention (2 run(s) in all" in results
    assert r"$^\ddagger$" in written["results.tex"].read_text()
