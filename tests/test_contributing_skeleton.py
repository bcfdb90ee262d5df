"""CONTRIBUTING.md's "add a method" stays a path a newcomer can walk: its skeleton is extracted from the file,
registered, counted and trained one step on a tiny T5; and every registered method has the preset entries the
guide asks for."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

from bench.presets import get_preset
from methods.registry import METHODS, build_config, get_method_class, list_methods

REPO = Path(__file__).resolve().parents[1]


def _skeleton() -> str:
    text = (REPO / "CONTRIBUTING.md").read_text()
    section = text[text.index("### A minimal working method") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "CONTRIBUTING.md's 'A minimal working method' has no python block"
    return match.group(1)


@pytest.fixture
def skeleton():
    """The skeleton's module, registered for the test and unregistered after (the registry is global)."""
    module = types.ModuleType("contributing_skeleton")  # dataclasses look their module up in sys.modules
    sys.modules[module.__name__] = module
    before = set(list_methods())
    exec(compile(_skeleton(), "CONTRIBUTING.md", "exec"), module.__dict__)  # noqa: S102 - the documented example
    added = sorted(set(list_methods()) - before)
    assert added == ["scaled_pt"], f"the skeleton registered {added}"
    try:
        yield module
    finally:
        METHODS._items.pop("scaled_pt", None)
        sys.modules.pop(module.__name__, None)


@pytest.mark.slow
def test_skeleton_counts_and_trains_one_step(skeleton, tiny_t5_dir):
    from bench.backbones.load import load_backbone, meta_backbone
    from bench.run.assemble import attach_method
    from bench.spec import TrainConfig
    from bench.training.optim import build_optimizer
    from methods.search_space import learning_rate_fields

    meta = meta_backbone("t5-base", 256)
    with torch.device("meta"):
        counted = attach_method(meta, "scaled_pt", build_config("scaled_pt")).counts()
    assert counted.trainable_params == 76_801  # l·d + 1, as its docstring says

    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_t5_dir), ["0", "1"], 24)
    cls = get_method_class("scaled_pt")
    method = cls(build_config("scaled_pt", {"num_tokens": "4", "lr": "0.05"}), backbone.dims)
    method.initialize(backbone, torch.Generator().manual_seed(0))
    backbone.attach(method)
    assert method.num_virtual_tokens == 4
    assert sorted(learning_rate_fields(cls.config_class)) == ["lr", "lr_scale"]  # both rates are searched

    from tests.test_methods_train import EXAMPLES

    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    optimizer = build_optimizer(method, backbone, TrainConfig())
    assert {g["name"] for g in optimizer.param_groups} >= {"prompt", "scale"}
    before = method.soft_prompt.detach().clone()
    loss = backbone.loss(batch)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, method.soft_prompt)


def test_every_method_has_quick_preset_entries():
    for preset in ("quick", "quick-decoder"):
        missing = sorted(set(list_methods()) - set(get_preset(preset).method))
        assert missing == [], f"{preset}: no entry for {missing} (CONTRIBUTING.md#presets-and-their-tests)"
