"""Bad input: one line naming the bad value and what is allowed, exit code 2, no traceback, no worker started —
checked at plan time (``--dry-run`` runs the same checks and nothing else). Includes a property-based test
that feeds random ``bench run`` arguments and ``--set`` values: every outcome is a clean plan or a clean error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.planning.plan import RunRequest, plan
from bench.results import read_record
from bench.worker import run_spec


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.err + captured.out
    assert err.count("\n") == 0 and err.startswith("bench: error: "), err
    return err


@pytest.fixture()
def tiny_args(tiny_bert_dir, data_dir, tmp_path):
    return [
        "run",
        "--tasks",
        "rte",
        "--seeds",
        "1",
        "--preset",
        "quick",
        "--model",
        str(tiny_bert_dir),
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "out"),
    ]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            ["--methods", "pt", "--set", "pt.num_tokens=600"],
            "num_tokens=600 + max_length=128 exceeds the backbone's 512",
        ),
        (["--methods", "pt", "--set", "train.max_length=600"], "exceeds the backbone's 512 positions"),
        (["--methods", "dept", "--set", "dept.rank=33"], "rank=33 must be between 1 and the hidden size 32"),
        (
            ["--methods", "ept", "--set", "ept.proj.rank=40"],
            "proj.rank=40 must be between 1 and the hidden size 32",
        ),
        (["--methods", "pt", "--max-steps", "-5"], "--max-steps -5 must be >= 1"),
        (["--methods", "pt", "--max-steps", "ten"], "argument --max-steps: invalid int value: 'ten'"),
        (["--methods", "pt", "--max-train-samples", "0"], "--max-train-samples 0 must be >= 1"),
        (["--methods", "pt", "--set", "train.max_eval_samples=0"], "train.max_eval_samples=0 must be >= 1"),
        (["--methods", "pt", "--set", "train.batch_size=1.5"], "train.batch_size='1.5' is not a valid int"),
        (["--methods", "pt", "--set", "train.nan_policy=ignore"], "train.nan_policy='ignore' is not allowed"),
        (
            ["--methods", "pt", "--set", "train.max_step=3"],
            "unknown field 'train.max_step' (did you mean 'max_steps'?)",
        ),
        (["--methods", "pt", "--set", "pt.lr=-1"], "lr=-1.0 must be > 0"),
        (["--methods", "pt", "--set", "dept.rank=3"], "'dept' is neither a selected method (pt) nor 'train'"),
        (["--methods", "pt", "--checkpoint-every", "-1"], "--checkpoint-every -1 must be >= 0"),
        (["--methods", "pt", "--model", "gpt3"], "unknown model 'gpt3'"),
        (["--methods", "pt", "--tasks", "rte,boolq"], "unknown task 'boolq' in suite 'glue'"),
        (["--methods", "pt", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--methods", "pt", "--out", __file__], "is a file, not a results folder"),
    ],
)
def test_bad_values_are_one_line_errors_at_plan_time(tiny_args, extra, expected, capsys, tmp_path):
    assert main([*tiny_args, *extra]) == 2
    err = one_error_line(capsys)
    assert expected in err, err
    assert not (tmp_path / "out").exists()  # no worker started, nothing written


def test_dry_run_validates_and_runs_nothing(tiny_args, capsys, tmp_path):
    assert main([*tiny_args, "--methods", "pt,dept", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan: 2 runs" in out and "dry run: nothing is run" in out
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tiny_args, capsys):
    assert main(["--debug", *tiny_args, "--methods", "pt", "--set", "pt.num_tokens=600", "--dry-run"]) == 2
    assert "Traceback" in capsys.readouterr().err


def _copy_rte(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(data_dir / "glue" / "RTE", root / "glue" / "RTE")
    return root


def _break_rows(path: Path, count: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    for i in range(1, count + 1):
        lines[i * 7] = "only\ttwo fields\n"
    path.write_text("".join(lines))


def test_a_few_malformed_rows_are_counted_and_reported(tiny_args, data_dir, tmp_path, capsys):
    root = _copy_rte(tmp_path, data_dir)
    _break_rows(root / "glue" / "RTE" / "train.tsv", 3)
    args = [*tiny_args, "--methods", "pt", "--data-dir", str(root), "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "glue/rte: 3 malformed row(s) skipped" in out and "train.tsv" in out and "line 8" in out

    (spec,) = plan(
        RunRequest(
            "glue",
            ["rte"],
            ["pt"],
            [1],
            "quick",
            model=tiny_args[8],
            data_dir=str(root),
            max_steps=2,
            max_train_samples=16,
            overrides={"train": {"max_length": "24", "max_eval_samples": "8"}},
        )
    )
    record = run_spec(spec)
    assert record["status"] == "ok", record["error"]
    assert record["data"]["malformed_rows"] == 3


def test_too_many_malformed_rows_is_an_error(tiny_args, data_dir, tmp_path, capsys):
    root = _copy_rte(tmp_path, data_dir)
    _break_rows(root / "glue" / "RTE" / "train.tsv", 40)
    assert main([*tiny_args, "--methods", "pt", "--data-dir", str(root)]) == 2
    err = one_error_line(capsys)
    assert "train.tsv: 40 of 2490 rows are malformed (more than 1%); first at line 8" in err
    assert not (tmp_path / "out").exists()


def test_an_empty_split_after_filtering_is_an_error(tiny_args, data_dir, tmp_path, capsys):
    root = _copy_rte(tmp_path, data_dir)
    dev = root / "glue" / "RTE" / "dev.tsv"
    dev.write_text(dev.read_text().splitlines(keepends=True)[0])  # header only
    assert main([*tiny_args, "--methods", "pt", "--data-dir", str(root)]) == 2
    err = one_error_line(capsys)
    assert "task 'rte'" in err and "split is empty" in err, err


# ---- property-based: random arguments give a clean plan or a clean error ------------------------------------

_FIELDS = [
    "train.max_steps",
    "train.batch_size",
    "train.max_length",
    "train.eval_every",
    "train.max_eval_samples",
    "train.nan_policy",
    "train.eval_mode",
    "train.grad_clip",
    "train.max_nan_skips",
    "pt.num_tokens",
    "pt.lr",
    "pt.init",
    "dept.rank",
    "dept.num_tokens",
    "dept.lr_lowrank",
    "ept.fusion.heads",
    "ept.proj.rank",
    "ept.fusion",
    "train",
    "pt.",
    "lora.r",
    "train.max_train_samples",
    "ept.num_tokens",
]
_VALUES = st.one_of(
    st.integers(-10, 5000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "none", "abc", "true", "skip", "stop", "score", "1e-3", "0x10", "1_000", "=", "ü"]),
)
_SET = st.tuples(st.sampled_from(_FIELDS), _VALUES).map(lambda fv: f"{fv[0]}={fv[1]}")
_OPTIONS = st.sampled_from(
    [
        ("--suite", st.sampled_from(["glue", "superglue", "glu", ""])),
        ("--tasks", st.sampled_from(["rte", "cola", "mrpc,rte", "cb", "stsb", "sst3", ",", ""])),
        ("--methods", st.sampled_from(["pt", "dept", "ept", "pt,dept", "all", "ptt", ""])),
        ("--seeds", st.sampled_from(["1", "1,2", "x", "-1", "99999999999"])),
        (
            "--model",
            st.sampled_from(["minilm", "t5-small", "t5-base", "TINY", "t5-bas", "./nope", "org/nope"]),
        ),
        ("--preset", st.sampled_from(["quick", "paper", "quik"])),
        ("--max-steps", st.integers(-3, 100_000).map(str)),
        ("--max-train-samples", st.integers(-3, 10_000).map(str)),
        ("--checkpoint-every", st.integers(-2, 50).map(str)),
        ("--set", _SET),
    ]
)


@st.composite
def run_arguments(draw, tiny_model: str) -> list[str]:
    args = ["run", "--dry-run", "--tasks", draw(st.sampled_from(["rte", "cola", "mrpc"]))]
    args += ["--methods", draw(st.sampled_from(["pt", "dept", "ept", "pt,ept"]))]
    for flag, values in draw(st.lists(_OPTIONS, max_size=6)):
        value = draw(values)
        args += [flag, tiny_model if value == "TINY" else value]
    return args


def test_random_arguments_give_a_clean_run_or_a_clean_error(
    tiny_bert_dir, data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a Hub id fails fast instead of waiting for the network
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)  # --out defaults to results/ here; a dry run must not create it

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(run_arguments(str(tiny_bert_dir)))
    def check(argv):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out, (argv, captured.err)
        if code == 0:
            assert "dry run: nothing is run" in captured.out, argv
        else:
            assert code == 2, (argv, code, captured.err)
            err = captured.err.strip()
            assert err.startswith("bench: error: ") and "\n" not in err, (argv, err)
        assert not (tmp_path / "results").exists()

    check()


@pytest.mark.slow
def test_a_failing_run_does_not_stop_the_grid(tiny_args, monkeypatch, capsys, tmp_path):
    """One run of the grid raises: the next run still runs, exit code 1, the summary lists the failure."""
    monkeypatch.setenv("PTBENCH_FAULT", "raise@2/seed=1")
    args = [*tiny_args, "--seeds", "1,2", "--methods", "pt", "--max-steps", "3", "--max-train-samples", "16"]
    args += ["--set", "train.max_length=24", "--set", "train.max_eval_samples=8", "--set", "pt.num_tokens=4"]
    assert main([*args, "--set", "train.batch_size=4"]) == 1
    out = capsys.readouterr().out
    assert (
        "failed pt on glue/rte seed 1" in out and "at step 2: RuntimeError: injected fault at step 2" in out
    )
    assert "1 of 2 runs did not finish ok" in out
    statuses = sorted(read_record(p)["status"] for p in (tmp_path / "out").glob("*.json"))
    assert statuses == ["failed", "ok"]
