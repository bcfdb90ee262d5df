"""A spec's inputs, read the same way by planning (the ``--dry-run`` checks, ``bench/planning/preflight.py``) and
by the run's factory (``bench/run/assemble.py``): its method config as a typed dataclass, validated against the
model's shapes (from the model's config alone, no weights), and the task's protocol splits with the preset's
size caps.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from bench.backbones.base import dims_from_config
from bench.backbones.models import UnknownModelError, load_config, model_family
from bench.errors import InputError, bad_input
from bench.fields import flatten_config
from bench.spec import RunSpec, TrainConfig
from methods.base import BackboneDims, MethodConfig
from methods.registry import build_config
from suites import get_task, load_splits


def subsample(examples: list, limit: int | None, seed: int = 42) -> list:
    """A fixed random subset (same for every run seed), kept in the split's order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))[:limit]
    return [examples[i] for i in sorted(keep.tolist())]


def prepare_data(spec: RunSpec, train: TrainConfig):
    """The task and its protocol splits, with the preset's size caps applied:
    ``(task, train_examples, dev, test, info)``."""
    task = get_task(spec.task, spec.suite)
    data_dir = Path(spec.data["dir"]) if spec.data.get("source") == "local" else None
    splits = load_splits(task, data_dir, seed=train.split_seed)
    cap = train.max_eval_samples
    train_examples = subsample(splits.train, train.max_train_samples)
    dev, test = splits.dev[:cap] if cap else splits.dev, splits.test[:cap] if cap else splits.test
    for name, split in (("train", train_examples), ("dev", dev), ("test", test)):
        if not split:
            raise InputError(f"task {spec.task!r}: the {name} split is empty after filtering")
    info = dict(splits.info, sizes={"train": len(train_examples), "dev": len(dev), "test": len(test)})
    return task, train_examples, dev, test, info


def validate_config(name: str, config: MethodConfig, dims: BackboneDims, model: str | None = None) -> None:
    """``config.validate(dims)``, its ``ValueError`` (the contract of ``validate``: a config that does not fit
    these dimensions) raised as the one-line ``InputError`` naming the method (and the model, when given)."""
    where = f"{name} on {model} (train.max_length={dims.max_length})" if model else name
    with bad_input(f"{where}: "):
        config.validate(dims)


def method_config(spec: RunSpec) -> MethodConfig:
    """The spec's method config as a typed dataclass (from the spec's plain dict)."""
    return build_config(spec.method, flatten_config(spec.method_config))


@lru_cache(maxsize=32)
def model_dims(model: str, max_length: int) -> BackboneDims:
    """The backbone's shapes from its config alone (the same fields ``Backbone.dims`` reads)."""
    config = load_config(model)
    family = model_family(config)
    if family in ("seq2seq", "encoder", "decoder"):
        return dims_from_config(family, config, max_length)
    raise UnknownModelError(f"model {model!r} ({config.model_type!r}) has unsupported family {family!r}")
