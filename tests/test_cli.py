"""Bad input is one line naming the bad value and what is allowed (with "did you mean"), exit code 2;
``bench list`` lists every kind."""

from __future__ import annotations

import pytest

from bench.cli import main


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--methods", "ptt"], "unknown method 'ptt' (did you mean 'pt'?)"),
        (["run", "--methods", "pt", "--suite", "glu"], "unknown suite 'glu' (did you mean 'glue'?)"),
        (
            ["run", "--methods", "pt", "--tasks", "sst3"],
            "unknown task 'sst3' in suite 'glue' (did you mean 'sst2'?)",
        ),
        (["run", "--methods", "pt", "--preset", "quik"], "unknown preset 'quik' (did you mean 'quick'?)"),
        (["run", "--methods", "pt", "--model", "t5-bas"], "unknown model 't5-bas' (did you mean 't5-base'?)"),
        (
            ["run", "--methods", "pt", "--set", "pt.num_tokns=3"],
            "unknown field 'pt.num_tokns' (did you mean 'num_tokens'?)",
        ),
        (["run", "--methods", "pt", "--set", "pt.num_tokens=abc"], "pt.num_tokens='abc' is not a valid int"),
        (["run", "--methods", "pt", "--set", "train.max_steps=-3"], "train.max_steps=-3 must be >= 1"),
        (
            ["run", "--methods", "pt", "--set", "train.eval_mode=beam"],
            "train.eval_mode='beam' is not allowed",
        ),
        (["run", "--methods", "pt", "--seeds", "4x"], "--seeds '4x' must be comma-separated integers"),
        (["run", "--methods", "pt", "--max-steps", "0"], "--max-steps 0 must be >= 1"),
        (
            ["params", "--methods", "dept", "--set", "dept.rank=5000"],
            "rank=5000 must be between 1 and the hidden size 768",
        ),
        (["list", "method"], "cannot list 'method' (did you mean 'methods'?)"),
    ],
)
def test_bad_input_is_one_clear_line(args, expected, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("bench: error: ") and expected in err, err


def test_missing_data_file_names_the_path(tmp_path, capsys):
    (tmp_path / "glue").mkdir()
    assert main(["run", "--methods", "pt", "--tasks", "rte", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"expected glue/RTE/train.tsv under {tmp_path}" in err
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize(
    "what, needle",
    [
        ("methods", "arXiv 2405.11464"),
        ("suites", "superglue"),
        ("tasks", "multirc"),
        ("models", "minilm"),
        ("presets", "quick"),
    ],
)
def test_list(what, needle, capsys):
    assert main(["list", what]) == 0
    assert needle in capsys.readouterr().out
