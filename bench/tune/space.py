"""A method's search space for one study: the method's declaration, or ``--space FILE``; and sampling.

``--space FILE`` (YAML) replaces the declared space of each method it names. Either one flat mapping (applies
to every tuned method) or one mapping per method name::

    # flat
    lr: {type: log, low: 1e-3, high: 1e-1}
    train.head_lr: {type: log, low: 0.1, high: 10, relative: true}
    # or per method
    dept:
      lr: {type: log, low: 0.01, high: 0.1}
      lr_lowrank: {type: log, low: 1e-4, high: 5e-3}
      num_tokens: {type: int, low: 8, high: 16}
    ept:
      proj.num_spaces: [2, 4, 8]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import InputError
from bench.spec import RunSpec
from methods.registry import get_method_class, list_methods
from methods.search_space import Choice, Dim, Float, IntRange, LogFloat, check_dim, dim_from_dict


def load_space_file(path: str | Path) -> dict[str, dict[str, Dim]] | dict[str, Dim]:
    """Parse a ``--space`` YAML file: ``{"*": space}`` for a flat file, else ``{method: space}``."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"--space {str(path)!r}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--space {str(path)!r}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"--space {str(path)!r}: expected a mapping of parameter paths (or method names)")
    methods = set(list_methods())
    if all(key in methods for key in data):
        return {m: _parse(entries, str(path)) for m, entries in data.items()}
    return {"*": _parse(data, str(path))}


def _parse(entries: Any, where: str) -> dict[str, Dim]:
    if not isinstance(entries, dict):
        raise InputError(f"--space {where!r}: expected a mapping, got {entries!r}")
    out = {}
    for path, entry in entries.items():
        dim = dim_from_dict(str(path), entry)
        check_dim(str(path), dim)
        out[str(path)] = dim
    return out


def method_space(method: str, overrides: dict[str, dict[str, Dim]] | None = None) -> dict[str, Dim]:
    """The space tuned for ``method``: ``--space`` (per method, else flat) or the method's declaration."""
    overrides = overrides or {}
    space = overrides.get(method) or overrides.get("*") or get_method_class(method).search_space()
    for path, dim in space.items():
        check_dim(path, dim)
    return dict(space)


def untuned_value(spec: RunSpec, path: str) -> Any:
    """The value ``path`` has in a planned spec (method config, or ``train.*``); one-line error if unknown."""
    if path.startswith("train."):
        key = path[len("train.") :]
        if key not in spec.train:
            raise InputError(f"search space {path!r}: no training setting {key!r}")
        if key == "head_lr":  # None: the head follows the method's rate (TrainConfig.head_rate)
            return spec.train_config().head_rate(spec.method_config["lr"])
        return spec.train[key]
    node: Any = spec.method_config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(f"search space {path!r}: {spec.method} has no config field {path!r}")
        node = node[part]
    return node


def suggest(trial: Any, space: dict[str, Dim], base: RunSpec) -> dict[str, dict[str, Any]]:
    """Sample every dimension -> overrides ``{method: {field: value}, "train": {field: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for path, dim in space.items():
        current = untuned_value(base, path)
        if isinstance(dim, Choice):
            value = trial.suggest_categorical(path, list(dim.choices))
        elif isinstance(dim, IntRange):
            value = trial.suggest_int(path, dim.low, dim.high, step=dim.step)
        elif isinstance(dim, LogFloat | Float):
            low, high = dim.bounds(current)
            value = trial.suggest_float(path, low, high, log=isinstance(dim, LogFloat))
        else:  # pragma: no cover - the Dim union is closed
            raise TypeError(f"unknown dimension {dim!r}")
        scope, field = ("train", path[len("train.") :]) if path.startswith("train.") else (base.method, path)
        out.setdefault(scope, {})[field] = value
    return out


def params_to_overrides(params: dict[str, Any], method: str) -> dict[str, dict[str, Any]]:
    """A trial's params (``{"lr": .., "train.head_lr": ..}``) -> ``{method: {...}, "train": {...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for path, value in params.items():
        scope, field = ("train", path[len("train.") :]) if path.startswith("train.") else (method, path)
        out.setdefault(scope, {})[field] = value
    return out
