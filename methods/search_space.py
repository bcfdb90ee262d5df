"""Search spaces: what ``bench tune`` may vary for a method, declared next to the method's config.

A space maps a *path* to a distribution. Paths are the method config's (dotted) field names (``lr``,
``lr_lowrank``, ``num_tokens``, ``proj.num_spaces``) or training settings prefixed ``train.`` (``train.head_lr``,
``train.batch_size``). Three kinds, each a small frozen dataclass so spaces are easy to read, compare and load
from YAML:

* :class:`LogFloat` ``(low, high, relative)``: log-uniform. With ``relative=True`` the bounds are *factors* of
  the value the run would use without tuning (the method default, then the preset's override), so one space
  fits both presets: PT's prompt lr is 0.3 under the paper preset on T5 and 3e-2 under the quick preset on
  MiniLM (whose embedding LayerNorm makes T5-era rates too high), and ``LogFloat(0.1, 10, relative=True)``
  searches 0.03–3 and 3e-3–0.3 respectively.
* :class:`IntRange` ``(low, high, step)``: integers, bounds inclusive.
* :class:`Choice` ``(choices)``: categorical.

The default space of a method (``Method.search_space``) puts every learning-rate field of its config (``lr``
and every ``lr_*``, nested ones included, i.e. one per parameter group) on ``LogFloat(0.1, 10,
relative=True)``, so a new method gets a sensible space without declaring one; methods override it with the
grids their papers searched (docs/methods/index.md).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from bench.errors import InputError
from bench.registry import did_you_mean


@dataclass(frozen=True)
class LogFloat:
    low: float
    high: float
    relative: bool = False  # bounds are factors of the untuned value

    def bounds(self, base: float | None) -> tuple[float, float]:
        if not self.relative:
            return self.low, self.high
        if base is None or base <= 0:
            raise InputError(f"a relative range needs a positive untuned value, got {base!r}")
        return self.low * base, self.high * base


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    relative: bool = False

    def bounds(self, base: float | None) -> tuple[float, float]:
        return LogFloat.bounds(self, base)  # type: ignore[arg-type]


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class Choice:
    choices: tuple


Dim = LogFloat | Float | IntRange | Choice
SearchSpace = dict[str, Dim]

RELATIVE_LR = LogFloat(0.1, 10.0, relative=True)


def learning_rate_fields(config_class: type, prefix: str = "") -> list[str]:
    """Dotted paths of every float field named ``lr`` or ``lr_*`` in a (nested) config dataclass."""
    hints = typing.get_type_hints(config_class)
    out = []
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out += learning_rate_fields(kind, f"{prefix}{f.name}.")
        elif kind is float and (f.name == "lr" or f.name.startswith("lr_")):
            out.append(f"{prefix}{f.name}")
    return out


def default_space(config_class: type) -> SearchSpace:
    """Every learning rate, log-uniform over ×[0.1, 10] of its untuned value."""
    return {path: RELATIVE_LR for path in learning_rate_fields(config_class)}


_KINDS = {"log": LogFloat, "float": Float, "int": IntRange, "choice": Choice}


def dim_from_dict(path: str, entry: Any) -> Dim:
    """One YAML entry -> a dimension. ``{type: log, low: 1e-4, high: 5e-3}``, ``{type: int, low: 4, high: 32}``,
    ``{type: choice, choices: [2, 4, 8]}``, ``{type: log, low: 0.3, high: 3, relative: true}``; a plain list is
    a choice."""
    if isinstance(entry, list):
        return Choice(tuple(entry))
    if not isinstance(entry, dict) or "type" not in entry:
        raise InputError(
            f"search space {path!r}: {entry!r} is not a mapping with 'type' (or a list of choices)"
        )
    kind = str(entry["type"])
    if kind not in _KINDS:
        raise InputError(
            f"search space {path!r}: type {kind!r} is not allowed{did_you_mean(kind, list(_KINDS))}; "
            f"allowed: {', '.join(_KINDS)}"
        )
    rest = {k: v for k, v in entry.items() if k != "type"}
    try:
        if kind == "choice":
            return Choice(tuple(rest["choices"]))
        if kind == "int":
            return IntRange(int(rest["low"]), int(rest["high"]), int(rest.get("step", 1)))
        # PyYAML reads 1e-4 (no dot) as a string: convert explicitly.
        dim = _KINDS[kind](float(rest["low"]), float(rest["high"]), bool(rest.get("relative", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"search space {path!r}: bad entry {entry!r} ({exc})") from None
    return dim


def check_dim(path: str, dim: Dim) -> None:
    """Raise a one-line ``ValueError`` on an empty or inverted range."""
    if isinstance(dim, Choice):
        if not dim.choices:
            raise InputError(f"search space {path!r}: no choices")
        return
    if dim.low > dim.high:
        raise InputError(f"search space {path!r}: low {dim.low} > high {dim.high}")
    if isinstance(dim, LogFloat) and dim.low <= 0:
        raise InputError(f"search space {path!r}: a log range needs low > 0, got {dim.low}")
    if isinstance(dim, IntRange) and dim.step < 1:
        raise InputError(f"search space {path!r}: step {dim.step} must be >= 1")


def describe(dim: Dim, base: Any = None) -> str:
    """Human-readable range, resolved against the untuned value when relative."""
    if isinstance(dim, Choice):
        return "{" + ", ".join(map(str, dim.choices)) + "}"
    if isinstance(dim, IntRange):
        return f"int [{dim.low}, {dim.high}]" + (f" step {dim.step}" if dim.step != 1 else "")
    kind = "log" if isinstance(dim, LogFloat) else "uniform"
    if dim.relative and base is not None:
        low, high = dim.bounds(base)
        return f"{kind} [{low:.3g}, {high:.3g}] (×[{dim.low:g}, {dim.high:g}] of {base:g})"
    return f"{kind} [{dim.low:g}, {dim.high:g}]" + (" ×untuned" if dim.relative else "")
