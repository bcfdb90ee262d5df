"""Run assembly: the one factory that builds a run's data, backbone and method.

``bench run``'s worker, ``bench eval``, the ``--dry-run`` checks, ``bench perf`` and ``bench params`` all build
through here, so a method is constructed, given its source prompts, initialised and attached the same way
everywhere. Names no method or task: the registries supply both. What a spec's run reads before anything is
built (its method config, the model's shapes, the task's data) is ``bench/planning/inputs.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import set_seed

from bench.backbones.load import load_backbone
from bench.planning.inputs import method_config, validate_config
from bench.planning.sources import load_source_prompts
from bench.spec import RunSpec, TrainConfig
from methods.registry import get_method_class

if TYPE_CHECKING:
    from bench.backbones.base import Backbone
    from methods.base import Method, MethodConfig


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

    method_cls = get_method_class(name)
    validate_config(name, config, backbone.dims)
    method = method_cls(config, backbone.dims)
    if method_cls.requires_sources and sources is not None:
        method.load_sources(sources(config))
    if seed is not None:
        method.initialize(backbone, torch.Generator().manual_seed(seed))
    backbone.attach(method)
    return method


def build(spec: RunSpec, task, train: TrainConfig, results_dir: Path | None = None):
    """Backbone with the method attached, seeded so the same spec gives the same initial state.

    Transfer methods first receive their source prompts (resolved in ``spec.sources`` at planning time; a
    run's artifact is also looked up under ``results_dir``).
    """

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

        return load_source_prompts(spec, results_dir)

    method = attach_method(backbone, spec.method, method_config(spec), spec.seed, sources)
    return backbone, method
