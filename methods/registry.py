"""Method registry: ``@register_method`` on the class is the one line that makes a method exist.

Configs are typed dataclasses; overrides arrive as strings from the CLI (``--set ept.fusion.attn_dim=8``)
or as values from presets and searches, and are coerced to the field's type here, in one place.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from bench.errors import InputError
from bench.registry import Registry, UnknownNameError, did_you_mean
from methods.base import Method, MethodConfig

__all__ = ["did_you_mean", "register_method", "get_method_class", "list_methods", "build_config"]


class UnknownMethodError(UnknownNameError):
    """An unknown method name or config field; the message is one line with the allowed values."""


def _load_builtin_methods() -> None:
    import methods.catalog  # noqa: F401  (imports every method module, which registers it)


METHODS: Registry[type[Method]] = Registry("method", UnknownMethodError, loader=_load_builtin_methods)


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register a method under ``cls.name``."""
    return METHODS.register(cls.name, cls)


def list_methods() -> list[str]:
    return sorted(METHODS)


def get_method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise METHODS.unknown(name, list_methods())
    return METHODS[name]


def parse_method_list(text: str) -> list[str]:
    """``"ept,dept,pt"`` or ``"all"`` -> validated method names, in the given order."""
    names = list_methods() if text.strip() == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        get_method_class(name)
    if not names:
        raise UnknownMethodError(f"no method given in {text!r}; allowed: {', '.join(list_methods())}")
    return names


# ---- config construction with typed overrides ---------------------------------------------------------


def _coerce(value: Any, annotation: Any, where: str) -> Any:
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
                return _coerce(value, arg, where)
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


def set_config_field(config: Any, dotted: str, value: Any, where: str | None = None) -> None:
    """Set ``a.b.c`` on a (nested) config dataclass, coercing ``value`` to the field's type."""
    where = where or dotted
    head, _, rest = dotted.partition(".")
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    if head not in names:
        raise UnknownMethodError(
            f"unknown field {where!r}{did_you_mean(head, names)}; {type(config).__name__} has: "
            + ", ".join(names)
        )
    current = getattr(config, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UnknownMethodError(f"field {where!r}: {head!r} has no sub-fields")
        set_config_field(current, rest, value, where)
        return
    if dataclasses.is_dataclass(current):
        raise UnknownMethodError(f"field {where!r} is a group; set one of its fields, e.g. {where}.<name>")
    setattr(config, head, _coerce(value, hints[head], where))


def build_config(method: str, overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The method's config: paper defaults, then ``overrides`` (``{"fusion.attn_dim": "8", ...}``)."""
    config = get_method_class(method).config_class()
    for key, value in (overrides or {}).items():
        set_config_field(config, key, value, where=f"{method}.{key}")
    return config


def config_to_dict(config: MethodConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def display_name(method: str, method_config: dict[str, Any]) -> str:
    """The name reports show for a run of ``method`` with ``method_config`` (a nested dict as in a spec):
    :meth:`Method.display_name_for`, or the bare method name when the config no longer builds (old records)."""
    from bench.spec import flatten_config

    try:
        cls = get_method_class(method)
        return cls.display_name_for(build_config(method, flatten_config(method_config)))
    except (KeyError, ValueError, TypeError):
        return method
