"""Source prompts for transfer methods (SPoT, ATTEMPT, MPT): from config items to saved prompts.

A method with ``requires_sources`` names its config field in ``Method.source_field`` (SPoT ``source``,
ATTEMPT/MPT ``sources``); the field holds comma-separated items, each one of

* a **task name** (``mnli``, ``sst2``, ...): the exported prompt (artifact key ``prompt``) of an ``ok`` run of
  ``Method.source_method`` (``pt``) on that task in the results folder, with the **same model and preset** as
  the target run. Seed: the target's seed if such a run exists, else 42, else the lowest seed present. Among
  several runs of that seed, the one with the preset's own settings (the run the harness would plan) wins,
  else the most recently finished (ties: lowest run id). If no such run exists, the planner adds that run
  (the source method on the task, the preset's settings, the target's seed) ahead of the dependent runs;
* a path to a ``.safetensors`` file with a ``prompt`` tensor ``[n, d]`` (an artifact of any run, or made by
  hand); its SHA-256 enters the run's hash;
* ``random`` or ``none``: no source prompts (the method then gets an empty list and decides what that means).

Resolution happens at planning time (:func:`resolve_sources`), so the resolved run ids (or file hashes) are
part of the target's spec and run id: a different source prompt gives a different run. The worker then loads
the prompts with :func:`load_source_prompts`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.artifact_file import artifact_relpath, load_prompt
from bench.errors import InputError, bad_input
from bench.spec import RunSpec
from suites import get_task

if TYPE_CHECKING:
    import torch

NO_SOURCE = ("random", "none")
DEFAULT_SEED = 42


def source_items(method_cls, config: Any) -> list[str]:
    """The config's source items in order, without ``random``/``none``; [] for methods without sources."""
    if not getattr(method_cls, "requires_sources", False) or not method_cls.source_field:
        return []
    value = getattr(config, method_cls.source_field, "") or ""
    items = [t.strip() for t in str(value).split(",") if t.strip()]
    return [t for t in items if t.lower() not in NO_SOURCE]


def is_file_item(item: str) -> bool:
    return item.endswith(".safetensors") or "/" in item


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _pick(candidates: list[dict], seed: int, preferred_id: str | None) -> dict:
    """The seed rule and tie-break of the module docstring."""
    seeds = {r["spec"]["seed"] for r in candidates}
    chosen_seed = seed if seed in seeds else DEFAULT_SEED if DEFAULT_SEED in seeds else min(seeds)
    same = [r for r in candidates if r["spec"]["seed"] == chosen_seed]
    for rec in same:
        if rec["run_id"] == preferred_id:
            return rec
    # max() keeps the first of equal keys: the latest finished, ties to the lowest run id.
    return max(sorted(same, key=lambda r: r["run_id"]), key=lambda r: r.get("finished_at") or "")


def resolve_sources(
    spec: RunSpec,
    method_cls,
    config: Any,
    out_dir: Path,
    records: list[dict],
    source_spec: Callable[[str, int], RunSpec],
) -> tuple[list[dict], list[RunSpec]]:
    """Resolve the target ``spec``'s source items to spec entries, and the source runs that must train first.

    ``records`` are the results folder's records; ``source_spec(task, seed)`` builds the spec the harness would
    plan for the source method on ``task`` (raising a one-line ``ValueError`` if it cannot be trained).
    """
    where = f"{spec.method}.{method_cls.source_field}"
    items = source_items(method_cls, config)
    with bad_input():  # check_sources' contract: a ValueError is an unacceptable source list
        method_cls.check_sources(items)
    entries: list[dict] = []
    to_train: list[RunSpec] = []
    for item in items:
        if is_file_item(item):
            entries.append(_file_entry(item, where))
            continue
        entry, planned = _run_entry(
            item, where, spec, method_cls.source_method, out_dir, records, source_spec
        )
        entries.append(entry)
        if planned is not None:
            to_train.append(planned)
    return entries, to_train


def _file_entry(item: str, where: str) -> dict:
    """The spec entry of a ``.safetensors`` prompt file: its SHA-256 (hashed) and the task it was trained on."""
    path = Path(item).expanduser().resolve()
    if not path.is_file():
        raise InputError(f"{where}={item!r}: no such prompt file")
    _, metadata = load_prompt(path)
    return {"kind": "file", "sha256": file_sha256(path), "task": metadata.get("task"), "path": str(path)}


def _run_entry(
    item: str,
    where: str,
    spec: RunSpec,
    source_method: str,
    out_dir: Path,
    records: list[dict],
    source_spec: Callable[[str, int], RunSpec],
) -> tuple[dict, RunSpec | None]:
    """The spec entry of a task item: the chosen ``ok`` source run with an artifact (module docstring), or
    the source run the planner adds (returned second, to train first)."""

    try:
        task = get_task(item).name
    except ValueError as exc:
        raise InputError(f"{where}={item!r}: {exc}; or give a .safetensors prompt file") from None
    matching = _ok_runs(records, source_method, task, spec)
    with_artifact = [r for r in matching if r.get("artifact")]
    planned = None
    if with_artifact:
        preferred = _try_source_spec(source_spec, task, spec.seed)
        rec = _pick(with_artifact, spec.seed, preferred.run_id if preferred else None)
        run_id, seed = rec["run_id"], rec["spec"]["seed"]
        path = Path(out_dir) / rec["artifact"]
    elif matching:
        raise InputError(
            f"{where}={item!r}: the {source_method} run {matching[0]['run_id']} on {task} has no saved artifact "
            f"(run with --no-artifacts); delete its record in {out_dir}/ to train it again"
        )
    else:
        planned = source_spec(task, spec.seed)
        run_id, seed = planned.run_id, planned.seed
        path = Path(out_dir) / artifact_relpath(run_id)
    entry = {
        "item": item,
        "kind": "run",
        "run_id": run_id,
        "method": source_method,
        "task": task,
        "seed": seed,
        "path": str(Path(path).resolve()),
    }
    return entry, planned


def _ok_runs(records: list[dict], method: str, task: str, target: RunSpec) -> list[dict]:
    """The ``ok`` records of ``method`` on ``task`` with the target's model and preset."""
    return [
        r
        for r in records
        if r["status"] == "ok"
        and r["spec"]["method"] == method
        and r["spec"]["task"] == task
        and r["spec"]["model"] == target.model
        and r["spec"]["preset"] == target.preset
    ]


def _try_source_spec(source_spec: Callable[[str, int], RunSpec], task: str, seed: int) -> RunSpec | None:
    try:
        return source_spec(task, seed)
    except InputError:  # e.g. the source task's data is missing: an existing run is still usable
        return None


def transfer_record(spec: RunSpec) -> dict | None:
    """The record's ``transfer`` field: source provenance, or None for runs without source prompts."""
    if not spec.sources:
        return None
    return {
        "sources": [{k: v for k, v in s.items() if k != "path"} for s in spec.sources],
        "source_run_ids": [s["run_id"] for s in spec.sources if s["kind"] == "run"],
        "self_transfer": spec.task in {s.get("task") for s in spec.sources},
    }


def source_prompt_path(entry: dict, results_dir: Path | None = None) -> Path:
    """Where a source entry's prompt lives; a run's artifact is also looked up under ``results_dir``."""
    if entry["kind"] == "run" and results_dir is not None:
        local = Path(results_dir) / artifact_relpath(entry["run_id"])
        if local.is_file():
            return local
    return Path(entry["path"])


def load_source_prompts(spec: RunSpec, results_dir: Path | None = None) -> list[torch.Tensor]:
    """The spec's source prompts ``[l_i, d]`` in order, checked against the run ids / hashes in the spec."""
    prompts = []
    for entry in spec.sources:
        path = source_prompt_path(entry, results_dir)
        if not path.is_file():
            what = f"source run {entry['run_id']} ({entry['method']} on {entry['task']})"
            raise InputError(
                f"{what if entry['kind'] == 'run' else 'source prompt file'}: {path} does not exist"
                + (" (did the source run fail?)" if entry["kind"] == "run" else "")
            )
        prompt, metadata = load_prompt(path)
        if entry["kind"] == "run" and metadata.get("run_id") != entry["run_id"]:
            raise InputError(f"{path} belongs to run {metadata.get('run_id')!r}, not {entry['run_id']!r}")
        if entry["kind"] == "file" and file_sha256(path) != entry["sha256"]:
            raise InputError(f"source prompt file {path} changed since the run was planned (SHA-256 differs)")
        prompts.append(prompt.float())
    return prompts
