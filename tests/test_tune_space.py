"""Search spaces and the pieces of `bench tune` that need no training: declared and default spaces, YAML
overrides, sampling into overrides, pruner parsing, and trial specs hashed apart from normal runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
import pytest

from bench.planning.plan import RunRequest, plan
from bench.tune.space import load_space_file, method_space, params_to_overrides, suggest
from bench.tune.storage import build_pruner, check_storage
from methods.base import MethodConfig
from methods.registry import get_method_class
from methods.search_space import Choice, IntRange, LogFloat, default_space, learning_rate_fields


@dataclass
class _Inner:
    lr_inner: float = 1e-3
    size: int = 4


@dataclass
class _Config(MethodConfig):
    lr_mlp: float = 0.1
    num_tokens: int = 10
    lr_note: str = "not a rate"
    inner: _Inner = field(default_factory=_Inner)


def test_default_space_covers_every_learning_rate_field():
    """A method that declares nothing searches each parameter group's rate around its untuned value."""
    assert learning_rate_fields(_Config) == ["lr", "lr_mlp", "inner.lr_inner"]
    space = default_space(_Config)
    assert set(space) == {"lr", "lr_mlp", "inner.lr_inner"}
    assert all(dim == LogFloat(0.1, 10.0, relative=True) for dim in space.values())


def test_declared_spaces_follow_the_papers_grids():
    assert set(get_method_class("pt").search_space()) == {"lr"}
    dept = get_method_class("dept").search_space()
    assert dept["lr_lowrank"] == LogFloat(1e-4, 5e-3)  # DePT's {1e-4 .. 5e-3}
    ept = get_method_class("ept").search_space()
    assert ept["lr_modules"] == LogFloat(1e-4, 5e-3) and ept["lr_lowrank"] == dept["lr_lowrank"]


def _spec(method: str, preset: str, **overrides):
    request = RunRequest("glue", ["rte"], [method], [42], preset, overrides=overrides or None)
    return plan(request)[0]


@pytest.mark.parametrize(("preset", "low", "high"), [("quick", 3e-3, 3e-1), ("paper", 3e-2, 3.0)])
def test_relative_ranges_follow_the_preset(preset, low, high):
    """PT's prompt lr is searched around the preset's rate: 3e-2 on MiniLM, 0.3 on T5."""
    trial = optuna.create_study().ask()
    overrides = suggest(trial, method_space("pt"), _spec("pt", preset))
    distribution = trial.distributions["lr"]
    assert distribution.log
    assert distribution.low == pytest.approx(low) and distribution.high == pytest.approx(high)
    assert low <= overrides["pt"]["lr"] <= high


def test_space_file_flat_and_per_method(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text(
        "lr: {type: log, low: 1e-3, high: 1e-1}\ntrain.head_lr: {type: log, low: 0.5, high: 2, relative: true}\n"
    )
    flat_space = load_space_file(flat)
    assert flat_space == {
        "*": {"lr": LogFloat(1e-3, 1e-1), "train.head_lr": LogFloat(0.5, 2.0, relative=True)}
    }
    per = tmp_path / "per.yaml"
    per.write_text("dept:\n  num_tokens: {type: int, low: 8, high: 16}\nept:\n  proj.num_spaces: [2, 4, 8]\n")
    parsed = load_space_file(per)
    assert method_space("dept", parsed) == {"num_tokens": IntRange(8, 16)}
    assert method_space("ept", parsed) == {"proj.num_spaces": Choice((2, 4, 8))}
    assert method_space("pt", parsed) == get_method_class("pt").search_space()  # not named: declared space

    trial = optuna.create_study().ask()
    spec = _spec("ept", "quick")
    assert suggest(trial, method_space("ept", parsed), spec)["ept"]["proj.num_spaces"] in (2, 4, 8)
    trial = optuna.create_study().ask()
    out = suggest(trial, flat_space["*"], _spec("pt", "quick"))
    assert 0.015 <= out["train"]["head_lr"] <= 0.06  # relative to the quick head's rate: PT's lr 3e-2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr: {type: loq, low: 1, high: 2}", "did you mean 'log'"),
        ("lr: {type: log, low: 0, high: 2}", "needs low > 0"),
        ("lr: {type: int, low: 5, high: 2}", "low 5 > high 2"),
        ("lr: 3", "not a mapping"),
    ],
)
def test_bad_space_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_space_file(path)


def test_unknown_path_in_space_is_an_error():
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="no config field 'lr_typo'"):
        suggest(trial, {"lr_typo": LogFloat(1e-3, 1e-1)}, _spec("pt", "quick"))


def test_params_to_overrides_splits_train_settings():
    assert params_to_overrides({"lr": 0.1, "train.head_lr": 0.01}, "pt") == {
        "pt": {"lr": 0.1},
        "train": {"head_lr": 0.01},
    }


def test_pruners_and_storage_checks():
    assert isinstance(build_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(build_pruner("none"), optuna.pruners.NopPruner)
    assert isinstance(build_pruner("threshold:lower=50"), optuna.pruners.ThresholdPruner)
    with pytest.raises(ValueError, match="did you mean 'median'"):
        build_pruner("medain")
    with pytest.raises(ValueError, match="SQLite is not used for parallel workers"):
        check_storage("sqlite:///x.db", workers=2)


def test_trial_specs_are_hashed_apart_and_normal_run_ids_are_unchanged():
    import dataclasses
    import hashlib
    import json

    spec = _spec("pt", "quick")
    ident = dataclasses.asdict(spec)
    del ident["trial"]
    del ident["sources"]  # empty for a non-transfer run, and then not hashed either (bench/spec.py)
    ident["data"] = {"source": "hub"}
    # Added after records existed, so hashed only when not at their default (bench/spec.py).
    from bench.spec import HASHED_UNLESS_DEFAULT

    for name, default in HASHED_UNLESS_DEFAULT.items():
        if ident["train"][name] == default:
            del ident["train"][name]
    ident["spec_version"] = 1
    expected = hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[
        :16
    ]
    assert spec.run_id == expected  # no "trial" key in a normal run's hash
    trial = dataclasses.replace(spec, trial={"study": "s", "trial": 0})
    assert trial.run_id != spec.run_id


def test_params_files_nested_and_flat(tmp_path):
    from bench.tune.params import load_params

    nested = tmp_path / "nested.json"
    nested.write_text('{"dept": {"lr": 0.05}, "train": {"head_lr": 0.03}}')
    assert load_params(str(nested), ["dept", "pt"], "unused") == {
        "dept": {"lr": 0.05},
        "train": {"head_lr": 0.03},
    }
    flat = tmp_path / "flat.yaml"
    flat.write_text("lr: 0.05\ntrain.head_lr: 0.03\n")
    assert load_params(str(flat), ["pt"], "unused") == {"pt": {"lr": 0.05}, "train": {"head_lr": 0.03}}
    with pytest.raises(ValueError, match="needs exactly one method"):
        load_params(str(flat), ["pt", "dept"], "unused")
    with pytest.raises(ValueError, match="'dept' is neither a selected method"):
        load_params(str(nested), ["pt"], "unused")
    with pytest.raises(ValueError, match="no study storage"):
        load_params("best:missing", ["pt"], str(tmp_path / "none.journal"))


@pytest.mark.parametrize(
    ("method", "sets", "space_file"),
    [
        ("pt", {"train": {"eval_every": "2", "head_lr": "0.01"}}, None),
        ("dept", {"dept": {"lr_lowrank": "1e-3"}, "train": {"batch_size": "4"}}, None),
        (
            "ept",
            {},
            "ept:\n  proj.num_spaces: [2, 4, 8]\n  train.head_lr: {type: log, low: 0.5, high: 2, relative: true}\n  train.batch_size: {type: int, low: 4, high: 8}\n",
        ),
    ],
)
def test_a_trials_spec_is_the_planners(tmp_path, method, sets, space_file):
    """A study plans once; each trial's spec (base spec + sampled values) is exactly the spec the planner gives
    for the request with the sampled values added to its --set overrides, so run ids are unchanged."""
    import dataclasses

    from bench.tune.search import TuneRequest, study_jobs

    spaces = {}
    if space_file:
        path = tmp_path / "space.yaml"
        path.write_text(space_file)
        spaces = load_space_file(path)
    request = RunRequest("glue", ["rte"], [method], [42], "quick", max_steps=4, overrides=sets or None)
    tune = TuneRequest(request, str(tmp_path), 3, str(tmp_path / "tune.journal"), space_overrides=spaces)
    (job,) = study_jobs(tune)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for number in range(3):
        trial = study.ask()
        sampled = suggest(trial, job.space, job.base_spec())
        overrides = {k: dict(v) for k, v in sets.items()}
        for scope, values in sampled.items():
            overrides.setdefault(scope, {}).update(values)
        (planned,) = plan(dataclasses.replace(request, overrides=overrides))
        expected = dataclasses.replace(planned, trial={"study": job.name, "trial": number})
        spec = job.trial_spec(sampled, number)
        assert spec == expected and spec.run_id == expected.run_id
        study.tell(trial, 50.0)


def test_the_worker_names_no_subsystem_and_evaluations_travel_by_the_protocol():
    """``bench.worker`` imports no ``bench.tune``; a trial's dev evaluations and the runner's answers are
    protocol lines (bench/protocol.py)."""
    import ast
    from pathlib import Path

    from bench import protocol

    tree = ast.parse(Path(protocol.__file__).with_name("worker.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name.startswith("bench.tune") for name in imported)

    argv = protocol.worker_command(Path("s.json"), Path("r.json"), None, True, None, report_evaluations=True)
    assert protocol.parse_worker_args(argv[3:]).report_evaluations
    assert not protocol.parse_worker_args(
        protocol.worker_command(Path("s"), Path("r"))[3:]
    ).report_evaluations
    line = protocol.evaluation_line(2, {"accuracy": 47.5, "f1": 0.1}, "accuracy")
    assert protocol.parse_evaluation(line) == {
        "step": 2,
        "metrics": {"accuracy": 47.5, "f1": 0.1},
        "selection_metric": "accuracy",
    }
    assert protocol.parse_progress(line) is None and protocol.parse_evaluation("@@progress {}") is None
    assert protocol.parse_reply(protocol.reply_line(None)) is None
    assert protocol.parse_reply(protocol.reply_line("pruned at step 2 (dev accuracy 47.50)")) == (
        "pruned at step 2 (dev accuracy 47.50)"
    )
    with pytest.raises(ValueError, match="not @@continue or @@stop"):
        protocol.parse_reply("")  # the runner went away
