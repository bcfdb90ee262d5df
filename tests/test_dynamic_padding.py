"""Dynamic padding (``train.padding="longest"``): a batch cut to its longest row gives every method the same loss
and predictions as the same batch padded to ``s``, on each backbone family.

Pad positions are masked out everywhere, and DePT/EPT slice their position-wise update to the batch length
(row ``i`` still meets token ``i``), so cutting trailing pad columns changes nothing on the real tokens. The
exceptions are ATTEMPT's ``summary_over="all"`` (its max-pool reads pads, the official T5 behaviour) and MEPT's
``router_mean="all"`` (its router averages pads too, as the official code): the harness keeps those batches ``s``
wide, and the ATTEMPT test below shows why it must (``tests/test_mept.py`` checks MEPT's)."""

from __future__ import annotations

import pytest
import torch

from bench.spec import TrainConfig
from methods.registry import list_methods
from tests.test_methods_train import EXAMPLES, MAX_LENGTH, _build

LABELS = ["0", "1"]


def _batches(backbone):
    split = backbone.encode(EXAMPLES, LABELS)
    full, trimmed = split.batch(slice(None)), split.batch(slice(None), trim=True)
    width = trimmed["input_ids"].shape[1]
    assert width < full["input_ids"].shape[1] == MAX_LENGTH, "the test batch must have pad columns to cut"
    assert torch.equal(trimmed["attention_mask"], full["attention_mask"][:, :width])
    assert int(full["attention_mask"][:, width:].sum()) == 0, "only pad columns may be cut"
    return full, trimmed


@pytest.mark.parametrize("method_name", list_methods())
def test_cut_batches_give_the_same_loss_and_predictions(tiny_model_dir, method_name):
    # ATTEMPT's and MEPT's official summaries read the pads; their real-token settings must cut batches exactly
    overrides = {"attempt": {"summary_over": "real_tokens"}, "mept": {"router_mean": "real"}}.get(
        method_name, {}
    )
    backbone, method = _build(tiny_model_dir, method_name, **overrides)
    assert backbone.trims_batches("longest") and not backbone.trims_batches("max_length")
    backbone.train(False)
    full, trimmed = _batches(backbone)
    with torch.no_grad():
        loss_full, loss_trimmed = backbone.loss(full), backbone.loss(trimmed)
        assert torch.allclose(loss_full, loss_trimmed, rtol=1e-5, atol=1e-6), (loss_full, loss_trimmed)
        for mode in ("score", "generate") if backbone.family != "encoder" else ("generate",):
            assert backbone.predict(trimmed, mode, LABELS) == backbone.predict(full, mode, LABELS), mode


def test_gradients_match_too(tiny_t5_dir):
    """DePT's update: the rows past the batch length get no gradient either way; the rest get the same one."""
    grads = []
    for trim in (False, True):
        backbone, method = _build(tiny_t5_dir, "dept")
        batch = backbone.encode(EXAMPLES, LABELS).batch(slice(None), trim=trim)
        backbone.loss(batch).backward()
        grads.append([p.grad.clone() for p in method.parameters()])
    for full, cut in zip(*grads, strict=True):
        assert torch.allclose(full, cut, rtol=1e-5, atol=1e-7)


def test_attempt_reading_pads_keeps_batches_full_width(tiny_t5_dir):
    # A low temperature so that a change of the summary shows in the loss (at T = d·e the softmax is ~uniform).
    backbone, method = _build(tiny_t5_dir, "attempt", summary_over="all", temperature="0.01")
    assert method.pad_positions_matter and not backbone.trims_batches("longest")
    # Why: cutting the pads away changes the summary x̂ of the longest row, hence its prompt and its loss.
    backbone.train(False)
    full, trimmed = _batches(backbone)
    with torch.no_grad():
        assert not torch.allclose(backbone.loss(full), backbone.loss(trimmed), rtol=1e-5, atol=1e-6)


def test_padding_setting_is_validated_and_hashed():
    from bench.presets import get_preset

    train = TrainConfig()
    assert train.padding == "longest"
    with pytest.raises(ValueError, match="train.padding='shortest' is not allowed"):
        train.set("padding", "shortest")
    assert get_preset("paper").train["padding"] == "max_length"
