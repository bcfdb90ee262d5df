"""Method registry: ``@register_method`` on the class is the one line that makes a method exist.

Configs are typed dataclasses; overrides arrive as strings from the CLI (``--set ept.fusion.attn_dim=8``)
or as values from presets and searches, and are coerced to the field's type by ``bench.fields`` (the one place,
shared with ``TrainConfig``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import fields
from bench.fields import flatten_config
from bench.registry import Registry, UnknownNameError, did_you_mean
from methods.base import Method, MethodConfig

__all__ = ["did_you_mean", "register_method", "get_method_class", "list_methods", "build_config"]


class UnknownMethodError(UnknownNameError):
    """An unknown method name or config field; the message is one line with the allowed values."""


def _load_builtin_methods() -> None:
    # noqa reasons: F401, imported for its effect (every method module registers itself); PLC0415, the registry's
    # loader: methods/catalog.py imports every method module, and each imports this one
    import methods.catalog  # noqa: F401, PLC0415


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


def set_config_field(config: Any, dotted: str, value: Any, where: str | None = None) -> None:
    """Set ``a.b.c`` on a (nested) config dataclass, coercing ``value`` to the field's type
    (``bench.fields.set_config_field``; an unknown field is an ``UnknownMethodError``)."""
    fields.set_config_field(config, dotted, value, where, UnknownMethodError)


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
    try:
        cls = get_method_class(method)
        return cls.display_name_for(build_config(method, flatten_config(method_config)))
    except (KeyError, ValueError, TypeError):
        return method
