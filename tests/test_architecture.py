"""The seams of the house (docs/architecture.md): exit codes, the registry, the one grid path for every
executor, methods declaring their own extras, and small files. Fast: no model is trained."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bench.cli import main
from bench.errors import InputError
from bench.registry import Registry, UnknownNameError
from bench.results import empty_record, record_path, write_json_atomic
from bench.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]


def test_a_bug_is_an_internal_error_not_bad_input(monkeypatch, capsys):
    """A plain ValueError raised in the bench process is a bug: exit 1, said so, traceback under --debug."""
    import bench.cli.listing

    def broken(what):
        raise ValueError("some internal invariant broke")

    monkeypatch.setattr(bench.cli.listing, "_table", broken)
    assert main(["list", "methods"]) == 1
    err = capsys.readouterr().err
    assert "internal error: ValueError: some internal invariant broke" in err
    assert "Traceback" not in err and "bench: error:" not in err
    assert main(["--debug", "list", "methods"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_bad_input_is_one_line_exit_2(monkeypatch, capsys):
    import bench.cli.listing

    def bad(what):
        raise InputError("train.batch_size=0 must be >= 1")

    monkeypatch.setattr(bench.cli.listing, "_table", bad)
    assert main(["list", "methods"]) == 2
    assert capsys.readouterr().err == "bench: error: train.batch_size=0 must be >= 1\n"


def test_registry_did_you_mean_and_duplicates():
    reg: Registry[int] = Registry("colour")
    reg.register("red", 1)
    reg.register("green", 2)
    reg.register("red", 1)  # the same item again is fine
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("red", 3)
    with pytest.raises(UnknownNameError) as exc:
        reg.lookup("gren")
    assert str(exc.value) == "unknown colour 'gren' (did you mean 'green'?); allowed: red, green"
    assert isinstance(exc.value, InputError)
    assert list(reg) == ["red", "green"] and "red" in reg and "blue" not in reg


def test_help_lists_every_preset_and_executor(capsys):
    from bench.grid.executors import EXECUTORS
    from bench.presets import PRESETS

    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert " | ".join(PRESETS) in text and " | ".join(EXECUTORS) in text


def _spec(seed: int) -> RunSpec:
    return RunSpec("glue", "rte", "pt", {}, "m", "quick", seed, {"max_steps": 3})


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_every_executor_reports_real_status_notes_and_temp_files(executor, tmp_path, monkeypatch):
    """The same grid path whatever the executor: stale temp files removed, malformed-row notes, the real
    status (oom) and the step reached of a run that did not finish ok, escaped error text."""
    import bench.grid.runner
    from bench.grid.execute import execute_grid

    specs = [_spec(1), _spec(2)]

    def fake_run_one(spec, out_dir, on_progress=None, save_artifacts=True, checkpoint_every=None, env=None):
        record = empty_record(spec) | {"trainable_params": 1, "step_time_ms_median": 1.0}
        record["data"] = {"malformed_rows": 2}
        if spec.seed == 1:
            record |= {"status": "ok"}
            record["metrics"]["headline"] = {"name": "accuracy", "dev": 50.0, "test": 50.0}
        else:
            record |= {"status": "oom", "steps": 2, "error": "OutOfMemoryError: [bold]x[/bold]"}
        write_json_atomic(record_path(out_dir, spec), record)
        return record

    monkeypatch.setattr(bench.grid.runner, "run_one", fake_run_one)
    tmp_path.joinpath(f".pt_rte_seed2_{specs[1].run_id}.json.abc.tmp").write_text("{")
    console = Console(record=True, width=300)
    assert execute_grid(specs, tmp_path, console, executor, workers=2) == 1
    text = console.export_text()
    assert "2 runs, 0 already done, 2 to run" in text
    assert "removed a temporary file left by a killed run" in text
    assert "rte: 2 malformed row(s) skipped" in text
    assert (
        f"oom pt on glue/rte seed 2 ({specs[1].run_id}) at step 2: OutOfMemoryError: [bold]x[/bold]" in text
    )
    assert "1 of 2 runs did not finish ok" in text


def test_unknown_executor_is_bad_input(tmp_path):
    from bench.grid.execute import execute_grid

    with pytest.raises(InputError, match="did you mean 'local'"):
        execute_grid([_spec(1)], tmp_path, Console(), "locl")


def test_methods_declare_their_peft_twin_and_recorded_keys():
    from bench.perf.cases import has_peft_twin
    from methods.registry import get_method_class, list_methods

    twins = {name for name in list_methods() if has_peft_twin(name)}
    assert {"pt", "lora", "prefix", "ptuning", "mpt"} <= twins
    assert "dept" not in twins and "ept" not in twins
    assert get_method_class("ept").record_init_and_best == ("gate_weights",)
    assert get_method_class("pt").record_init_and_best == ()


def test_method_record_keeps_declared_keys_at_init_and_best():
    from types import SimpleNamespace

    from bench.run.record import method_record

    result = SimpleNamespace(
        method_record_init={"gate_weights": [0.5], "other": 1},
        method_record_best={"gate_weights": [0.9], "other": 2},
        stages=[{}],
    )
    method = SimpleNamespace(
        record_init_and_best=("gate_weights",), attach="input", display_name=lambda: "ept[placeholder-v0]"
    )
    out = method_record(result, method, SimpleNamespace())
    assert out["gate_weights_init"] == [0.5] and out["gate_weights_best"] == [0.9]
    assert "other_init" not in out and out["other"] == 2 and out["attach"] == "input"
    assert out["display_name"] == "ept[placeholder-v0]"  # the row name reports show


def test_no_source_file_over_350_lines():
    long = [
        f"{p.relative_to(REPO)}: {n}"
        for folder in ("bench", "methods", "suites")
        for p in (REPO / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 350
    ]
    assert not long, long
