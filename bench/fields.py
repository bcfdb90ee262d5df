"""Typed config fields: one place that coerces an override to its field's type and sets a dotted field.

Overrides arrive as strings from the CLI (``--set ept.fusion.attn_dim=8``, ``--set train.max_steps=500``) or as
values from presets and searches. ``bench.spec.TrainConfig`` and ``methods.registry`` both set fields through
here. A leaf module (it imports only ``bench.errors`` and ``bench.registry``), so the core types never import
the method plugins, and ``methods/`` may import it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from bench.errors import InputError
from bench.registry import UnknownNameError, did_you_mean


class UnknownFieldError(UnknownNameError):
    """An unknown config field (or a group set as a value); the message is one line with the allowed fields."""


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Coerce a CLI string (or a plain value) to the annotated type; one-line ``InputError`` if impossible."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where}: cannot parse {value!r}")
    if origin is typing.Literal:
        allowed = [str(a) for a in args]
        if str(value) not in allowed:
            raise InputError(
                f"{where}={value!r} is not allowed{did_you_mean(str(value), allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
        return args[allowed.index(str(value))]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise InputError(f"{where}={value!r} is not a boolean (true/false)")
    if annotation in (int, float, str):
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise InputError(f"{where}={value!r} is not an integer")
        try:
            return annotation(value) if annotation is not int else int(str(value).replace("_", ""))
        except (TypeError, ValueError):
            raise InputError(f"{where}={value!r} is not a valid {annotation.__name__}") from None
    return value


def set_config_field(
    config: Any,
    dotted: str,
    value: Any,
    where: str | None = None,
    error: type[InputError] = UnknownFieldError,
) -> None:
    """Set ``a.b.c`` on a (nested) config dataclass, coercing ``value`` to the field's type; an unknown field
    raises ``error`` (one line, with a close match and every field)."""
    where = where or dotted
    head, _, rest = dotted.partition(".")
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    if head not in names:
        raise error(
            f"unknown field {where!r}{did_you_mean(head, names)}; {type(config).__name__} has: "
            + ", ".join(names)
        )
    current = getattr(config, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise error(f"field {where!r}: {head!r} has no sub-fields")
        set_config_field(current, rest, value, where, error)
        return
    if dataclasses.is_dataclass(current):
        raise error(f"field {where!r} is a group; set one of its fields, e.g. {where}.<name>")
    setattr(config, head, coerce(value, hints[head], where))


def flatten_config(config: dict, prefix: str = "") -> dict:
    """A nested config dict as dotted overrides: ``{"fusion": {"attn_dim": 8}}`` -> ``{"fusion.attn_dim": 8}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
