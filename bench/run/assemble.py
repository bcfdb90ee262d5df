"""Run assembly: the one factory that builds a run's data, backbone and method.

``bench run``'s worker, ``bench eval``, the ``--dry-run`` checks, ``bench perf`` and ``bench params`` all build
through here, so a method is constructed, given its source prompts, initialised and attached the same way
everywhere. Names no method or task: the registries supply both.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from bench.fields import flatten_config
from bench.spec import RunSpec, TrainConfig
from methods.base import BackboneDims

if TYPE_CHECKING:
    from bench.backbones import Backbone
    from methods.base import Method, MethodConfig


def subsample(examples: list, limit: int | None, seed: int = 42) -> list:
    """A fixed random subset (same for every run seed), kept in the split's order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))[:limit]
    return [examples[i] for i in sorted(keep.tolist())]


def prepare_data(spec: RunSpec, train: TrainConfig):
    """The task and its protocol splits, with the preset's size caps applied:
    ``(task, train_examples, dev, test, info)``."""
    from bench.errors import InputError
    from suites import get_task, load_splits

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


def attach_method(
    backbone: Backbone,
    name: str,
    config: MethodConfig,
    seed: int | None = None,
    sources: Callable[[Any], list[torch.Tensor]] | None = None,
) -> Method:
    """Build method ``name`` with ``config`` for ``backbone``, give it its source prompts (``sources(config)``,
    transfer methods only), initialise it with ``seed`` (None: not initialised, e.g. on the meta device) and
    attach it."""
    from methods.registry import get_method_class

    method_cls = get_method_class(name)
    validate_config(name, config, backbone.dims)
    method = method_cls(config, backbone.dims)
    if method_cls.requires_sources and sources is not None:
        method.load_sources(sources(config))
    if seed is not None:
        method.initialize(backbone, torch.Generator().manual_seed(seed))
    backbone.attach(method)
    return method


def validate_config(name: str, config: MethodConfig, dims: BackboneDims, model: str | None = None) -> None:
    """``config.validate(dims)``, its ``ValueError`` (the contract of ``validate``: a config that does not fit
    these dimensions) raised as the one-line ``InputError`` naming the method (and the model, when given)."""
    from bench.errors import bad_input

    where = f"{name} on {model} (train.max_length={dims.max_length})" if model else name
    with bad_input(f"{where}: "):
        config.validate(dims)


def method_config(spec: RunSpec) -> MethodConfig:
    """The spec's method config as a typed dataclass (from the spec's plain dict)."""
    from methods.registry import build_config

    return build_config(spec.method, flatten_config(spec.method_config))


def build(spec: RunSpec, task, train: TrainConfig, results_dir: Path | None = None):
    """Backbone with the method attached, seeded so the same spec gives the same initial state.

    Transfer methods first receive their source prompts (resolved in ``spec.sources`` at planning time; a
    run's artifact is also looked up under ``results_dir``).
    """
    from transformers import set_seed

    from bench.backbones import load_backbone

    set_seed(spec.seed)
    labels = None if task.is_regression else task.label_strings()
    backbone = load_backbone(
        spec.model,
        labels,
        train.max_length,
        train.dropout,
        train.encoder_text,
        train.encoder_prompt_position,
    )

    def sources(_config) -> list[torch.Tensor]:
        from bench.planning.sources import load_source_prompts

        return load_source_prompts(spec, results_dir)

    method = attach_method(backbone, spec.method, method_config(spec), spec.seed, sources)
    return backbone, method


@lru_cache(maxsize=32)
def model_dims(model: str, max_length: int) -> BackboneDims:
    """The backbone's shapes from its config alone (the same fields ``Backbone.dims`` reads)."""
    from bench.backbones.base import dims_from_config
    from bench.backbones.models import UnknownModelError, load_config, model_family

    config = load_config(model)
    family = model_family(config)
    if family in ("seq2seq", "encoder", "decoder"):
        return dims_from_config(family, config, max_length)
    raise UnknownModelError(f"model {model!r} ({config.model_type!r}) has unsupported family {family!r}")
