"""Planning: a ``RunRequest`` (what the user asked for) -> fully resolved ``RunSpec``s, validated.

Requests expand into task x method x seed (times each ``--sweep`` value), with preset settings, then the
user's ``--set`` overrides; transfer methods get their source runs resolved (``bench/planning/sources.py``) and the
missing ones planned to train first. Names no method or task: everything comes from the registries and presets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import InputError
from bench.fields import flatten_config
from bench.planning.inputs import method_config
from bench.planning.sources import resolve_sources
from bench.presets import get_preset, method_overrides, train_overrides
from bench.results import iter_records
from bench.spec import RunSpec, TrainConfig
from methods.registry import build_config, config_to_dict, get_method_class, parse_method_list
from suites import TaskDataError, check_local_files, get_task


@dataclass
class RunRequest:
    """What the user asked for, before expansion into specs."""

    suite: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    preset: str
    model: str | None = None
    data_dir: str | None = None
    max_steps: int | None = None
    max_train_samples: int | None = None
    overrides: dict[str, dict[str, str]] | None = None  # {"ept": {"fusion.attn_dim": "8"}, "train": {...}}
    out: str | None = None  # results folder, where source prompts are looked up (default results/)
    sweeps: list[tuple[str, str, list[str]]] | None = None  # [("pt", "num_tokens", ["10", "20"])]


def plan(request: RunRequest) -> list[RunSpec]:
    """Every spec to run: the source runs that must train first, then the requested runs (see below)."""
    sources, specs = plan_with_sources(request)
    return sources + specs


def plan_with_sources(request: RunRequest) -> tuple[list[RunSpec], list[RunSpec]]:
    """The missing source runs (deduplicated, to run first) and the requested specs, with sources resolved."""

    specs = _plan_requested(request)
    out_dir = Path(request.out or "results")
    records: list[dict] | None = None
    added: dict[str, RunSpec] = {}
    for spec in specs:
        method_cls = get_method_class(spec.method)
        if not method_cls.requires_sources:
            continue
        if records is None:
            records = list(iter_records(out_dir)) if out_dir.is_dir() else []
        config = method_config(spec)

        def source_spec(task: str, seed: int, spec=spec, cls=method_cls) -> RunSpec:
            return _source_spec(request, spec, cls, task, seed)

        entries, to_train = resolve_sources(spec, method_cls, config, out_dir, records, source_spec)
        spec.sources = entries
        for source in to_train:
            added.setdefault(source.run_id, source)
    # A requested run that is also a needed source runs once, ahead of the runs that need it.
    return list(added.values()), [s for s in specs if s.run_id not in added]


def with_overrides(spec: RunSpec, overrides: dict[str, dict[str, object]]) -> RunSpec:
    """``spec`` (planned) with further ``{method: {field: value}, "train": {field: value}}`` on top: the spec
    ``plan`` gives for the same request with these overrides added to its ``--set`` ones (a search trial's
    sampled values), without planning again. Values are coerced and validated as ``--set`` values are."""
    _check_override_scopes(overrides, [spec.method])
    train = _set_train(spec.train_config(), overrides.get("train", {}))
    config = build_config(
        spec.method, {**flatten_config(spec.method_config), **overrides.get(spec.method, {})}
    )
    return replace(spec, method_config=config_to_dict(config), train=dict(vars(train)))


def _source_spec(request: RunRequest, target: RunSpec, method_cls, task_name: str, seed: int) -> RunSpec:
    """The run the harness trains for a missing source prompt: the source method on ``task_name`` with the
    preset's settings (not the command's overrides), the target's model, data source and ``seed``."""

    source_method = method_cls.source_method
    task = get_task(task_name)
    if request.data_dir:
        try:
            check_local_files(task, request.data_dir)
        except TaskDataError as exc:
            raise InputError(
                f"{target.method}.{method_cls.source_field}: source task {task.name!r} has no ok "
                f"{source_method} run in {request.out or 'results'}/ (model {target.model}, preset "
                f"{target.preset}) and cannot be trained here: {str(exc).splitlines()[0]}; add its files, "
                f"or pick another source (--set {target.method}.{method_cls.source_field}=sst2) or a "
                ".safetensors prompt file"
            ) from None
    if get_method_class(source_method).requires_sources:
        raise InputError(f"source method {source_method!r} itself needs source prompts; not supported")
    preset = get_preset(request.preset)
    train = _preset_train(preset, task.name)
    config = _preset_config(preset, task.name, source_method)
    return RunSpec(
        suite=task.suite,
        task=task.name,
        method=source_method,
        method_config=config_to_dict(config),
        model=target.model,
        preset=preset.name,
        seed=seed,
        train=dict(vars(train)),
        data=dict(target.data),
    )


def parse_sweep(item: str) -> tuple[str, str, list[str]]:
    """``"pt.num_tokens=10,20,50"`` -> ``("pt", "num_tokens", ["10", "20", "50"])`` (scope: a method or train)."""
    key, sep, values = item.partition("=")
    scope, dot, field = key.partition(".")
    parts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not dot or not field or not parts:
        raise InputError(f"--sweep {item!r} is not of the form method.field=V1,V2,... (or train.field=V1,V2)")
    if scope != "train":
        parse_method_list(scope)  # unknown method -> did-you-mean error
    return scope, field, parts


def _plan_sweeps(request: RunRequest) -> list[RunSpec]:
    """One plan per swept value (the first sweep; the rest recursively). A sweep over a method's field only
    multiplies that method's runs; the other methods are planned once."""
    if not request.sweeps:
        return _plan_requested(request)
    (scope, field, values), rest = request.sweeps[0], request.sweeps[1:]
    if scope != "train" and scope not in request.methods:  # another method's sweep: nothing to do here
        return _plan_sweeps(replace(request, sweeps=rest))
    specs: list[RunSpec] = []
    given = request.overrides or {}
    others = [m for m in request.methods if m != scope] if scope != "train" else []
    if others:
        kept = {k: v for k, v in given.items() if k in others or k == "train"}
        specs += _plan_sweeps(replace(request, methods=others, overrides=kept, sweeps=rest))
    swept = request.methods if scope == "train" else [scope]
    for value in values:
        overrides = {k: dict(v) for k, v in given.items() if k in swept or k == "train"}
        overrides.setdefault(scope, {})[field] = value
        specs += _plan_sweeps(replace(request, methods=swept, overrides=overrides, sweeps=rest))
    unique = {spec.run_id: spec for spec in specs}  # a swept value equal to the default is planned once
    return list(unique.values())


def _plan_requested(request: RunRequest) -> list[RunSpec]:
    """Expand a request into fully resolved specs (task x method x seed, times each ``--sweep`` value),
    validating every value."""
    if request.sweeps:
        _check_sweep_scopes(request)
        return _plan_sweeps(request)
    preset = get_preset(request.preset)
    overrides = request.overrides or {}
    _check_override_scopes(overrides, request.methods)
    limits = {"max_steps": request.max_steps, "max_train_samples": request.max_train_samples}
    limits = {key: value for key, value in limits.items() if value is not None}
    data = _data_source(request)
    specs = []
    for task in request.tasks:
        train = _preset_train(preset, task, limits, overrides.get("train", {}))
        for method in request.methods:
            config = _preset_config(preset, task, method, overrides.get(method, {}))
            for seed in request.seeds:
                specs.append(
                    RunSpec(
                        suite=request.suite,
                        task=task,
                        method=method,
                        method_config=config_to_dict(config),
                        model=request.model or preset.model,
                        preset=preset.name,
                        seed=seed,
                        train=dict(vars(train)),
                        data=data,
                    )
                )
    if request.data_dir:  # after the settings, so a typo in --set is reported before a missing file
        for task in request.tasks:
            check_local_files(get_task(task, request.suite), request.data_dir)
    return specs


def _preset_train(preset, task: str, *overrides: dict[str, object]) -> TrainConfig:
    """The preset's (a ``bench.presets.Preset``) training settings for ``task``, then each of ``overrides`` in
    order; validated."""
    return _set_train(TrainConfig(), train_overrides(preset, task), *overrides)


def _set_train(train: TrainConfig, *overrides: dict[str, object]) -> TrainConfig:
    """``train`` with each of ``overrides`` set in order; validated."""
    for settings in overrides:
        for key, value in settings.items():
            train.set(key, value)
    train.validate()
    return train


def _preset_config(preset, task: str, method: str, overrides: dict[str, object] | None = None):
    """``method``'s config: its paper defaults, the preset's settings for ``task``, then ``overrides``."""
    return build_config(method, {**method_overrides(preset, task, method), **(overrides or {})})


def _check_sweep_scopes(request: RunRequest) -> None:
    for scope, field, _ in request.sweeps or []:
        if scope != "train" and scope not in request.methods:
            raise InputError(
                f"--sweep {scope}.{field}: {scope!r} is neither a selected method "
                f"({', '.join(request.methods)}) nor 'train'"
            )


def _check_override_scopes(overrides: dict[str, dict[str, str]], methods: list[str]) -> None:
    unknown = set(overrides) - set(methods) - {"train"}
    if unknown:
        name = sorted(unknown)[0]
        raise InputError(
            f"--set {name}.…: {name!r} is neither a selected method ({', '.join(methods)}) nor 'train'"
        )


def _data_source(request: RunRequest) -> dict[str, str]:
    """The spec's ``data``: a local folder (``--data-dir``, resolved) or the Hub."""
    if request.data_dir:
        return {"source": "local", "dir": str(Path(request.data_dir).resolve())}
    return {"source": "hub"}


def parse_overrides(items: Iterable[str], methods: list[str]) -> dict[str, dict[str, str]]:
    """``["ept.fusion.attn_dim=8", "train.batch_size=8"]`` -> ``{"ept": {"fusion.attn_dim": "8"}, ...}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        scope, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise InputError(f"--set {item!r} is not of the form method.field=value (or train.field=value)")
        if scope != "train":
            parse_method_list(scope)  # unknown method -> did-you-mean error
        out.setdefault(scope, {})[field] = value
    return out
