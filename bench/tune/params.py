"""``bench run --params``: settings from a finished search (``best:STUDY``) or a file, as ``--set`` overrides.

A file (YAML or JSON) is either nested, ``{method: {field: value}, train: {field: value}}``, or flat,
``{field: value, "train.field": value}`` (flat files apply to the single method of the run). ``--set`` given on
the same command wins over ``--params``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import InputError
from bench.tune.space import params_to_overrides


def load_params(text: str, methods: list[str], storage: str) -> dict[str, dict[str, Any]]:
    """``best:STUDY`` or a file path -> ``{scope: {field: value}}`` for ``RunRequest.overrides``."""
    if text.startswith("best:"):
        from bench.tune.search import best_overrides

        method, overrides = best_overrides(text[len("best:") :], storage)
        if method not in methods:
            raise InputError(f"--params {text!r}: the study tuned {method!r}, which is not among --methods")
        return overrides
    import yaml

    path = Path(text)
    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except OSError as exc:
        raise InputError(
            f"--params {text!r}: cannot read ({exc.strerror}); expected best:STUDY or a file"
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"--params {text!r}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"--params {text!r}: expected a mapping of settings")
    if all(isinstance(v, dict) for v in data.values()):
        unknown = set(data) - set(methods) - {"train"}
        if unknown:
            raise InputError(
                f"--params {text!r}: {sorted(unknown)[0]!r} is neither a selected method ({', '.join(methods)}) "
                "nor 'train'"
            )
        return {scope: dict(values) for scope, values in data.items()}
    if len(methods) != 1:
        raise InputError(
            f"--params {text!r}: a flat settings file needs exactly one method, got {len(methods)}"
        )
    return params_to_overrides(data, methods[0])
