"""Check a planned grid before any worker starts: bad input is one error at plan time, not N failed runs.

``bench run`` calls :func:`check_plan` after ``bench.planning.plan``; it raises an ``InputError`` (``TaskDataError`` is
one) with a one-line message (the CLI turns it into ``bench: error: ...``, exit code 2) for

* a method config that does not fit the backbone: rank larger than the hidden size, a prompt plus the padded
  input longer than the model's positions (BERT: 512), heads that do not divide d — every method's own
  ``validate(dims)``, run against the model's config (no weights, no model built);
* a data folder whose files have too many malformed rows (> 1%, ``suites.readers``), or a task whose train,
  dev or test split is empty after the caps (``max_train_samples``, ``max_eval_samples``).

It returns notes to show the user (malformed rows skipped, per task), so they are reported, not dropped.
"""

from __future__ import annotations

from bench.planning.inputs import method_config, model_dims, prepare_data, validate_config
from bench.spec import RunSpec


def check_methods(specs: list[RunSpec]) -> None:
    """Every method config validated against its backbone's dimensions (one error naming model and field)."""
    seen = set()
    for spec in specs:
        key = (spec.model, spec.method, spec.train["max_length"], repr(spec.method_config))
        if key in seen:
            continue
        seen.add(key)
        dims = model_dims(spec.model, spec.train["max_length"])
        validate_config(spec.method, method_config(spec), dims, spec.model)


_DATA_INFO: dict[tuple, dict] = {}


def _data_info(spec: RunSpec) -> dict | None:
    """The task's split info as the worker will load it (local data, read once per process); None: Hub data."""
    if spec.data.get("source") != "local":
        return None  # the Hub's copies are loaded by the worker
    train = spec.train_config()
    key = (
        spec.suite,
        spec.task,
        spec.data["dir"],
        train.split_seed,
        train.max_train_samples,
        train.max_eval_samples,
    )
    if key not in _DATA_INFO:  # per process: a task's files are read once however many runs use them
        _DATA_INFO[key] = prepare_data(spec, train)[-1]
    return _DATA_INFO[key]


def split_sizes(spec: RunSpec) -> dict[str, int] | None:
    """``{"train": n, "dev": n, "test": n}`` after the caps (what a run's evaluations score); None: Hub data."""
    info = _data_info(spec)
    return None if info is None else info["sizes"]


def check_data(specs: list[RunSpec]) -> list[str]:
    """Load each task's local data once as the worker will; return notes on malformed rows skipped."""
    notes = []
    for spec in specs:
        info = _data_info(spec)
        if info is None:
            continue
        if info.get("malformed_rows"):
            detail = "; ".join(info.get("malformed_detail") or [])
            note = f"{spec.suite}/{spec.task}: {info['malformed_rows']} malformed row(s) skipped ({detail})"
            if note not in notes:
                notes.append(note)
    return notes


def check_plan(specs: list[RunSpec]) -> list[str]:
    """All checks; raises on bad input, returns notes for the user."""
    check_methods(specs)
    return check_data(specs)
