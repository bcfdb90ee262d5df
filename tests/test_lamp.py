"""LAMP (docs/methods/lamp.md), the harness's placeholder design ``placeholder-v0`` of arXiv 2502.12200: counts on
T5-Base and in the quick presets, the SVD initialisation, the forward against a direct (uncompressed)
computation, the label reports show, and ``bench eval`` reproducing a run exactly.

arXiv 2502.12200's own T5-Base count (its efficiency table) could not be read, and no code is released, so the
count asserted here is the placeholder's formula ``r·(l + d + 1)``, not a check against the paper."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from bench.backbones.load import meta_backbone
from bench.cli import main
from bench.run.reeval import reevaluate
from methods.lamp import LAMPConfig, lamp_display_name
from methods.registry import build_config, config_to_dict, display_name
from tests.test_artifacts_eval import run_worker, train_for
from tests.test_methods_train import _build
from tests.test_params import count, preset_counts


def test_lamp_on_t5_base(t5_base):
    counts = count(t5_base, "lamp")  # placeholder-v0: l=100, r=8, k=2, d=768
    assert counts.trainable_params == counts.saved_params == 6_952
    assert counts.breakdown == {"U": 100 * 8, "q": 8, "V": 8 * 768}


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "lamp"]) == 0
    assert re.search(r"│ lamp\s+│\s+6,952 ", capsys.readouterr().out)


@pytest.mark.parametrize(
    "preset, model, expected",
    [
        ("quick", "minilm", {"pt": 7_680, "lamp": 810}),
        ("quick-decoder", "smollm2", {"pt": 5_760, "lamp": 587}),
    ],
)
def test_quick_presets_budgets(preset, model, expected):
    assert preset_counts(preset, model, expected) == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("rank", "0", "rank=0 must be between 1 and min"),
        ("rank", "101", "rank=101 must be between 1 and min"),
        ("pool", "3", "pool=3 must be >= 1 and divide num_tokens=100"),
        ("temperature", "0", "temperature=0.0 must be > 0"),
        ("lr_values", "0", "lr_values=0.0 must be > 0"),
    ],
)
def test_bad_values_are_rejected(t5_base, field, value, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, "lamp", **{field: value})


def test_the_pooled_length_is_what_must_fit_the_positions():
    """BERT-style backbones have 512 learned positions: 600 rows pooled by 4 (150) fit with s=128, by 1 do not."""
    backbone = meta_backbone("minilm", 128)
    assert count(backbone, "lamp", num_tokens=600, pool=4, rank=2).trainable_params == 2 * (600 + 384 + 1)
    with pytest.raises(ValueError, match="num_tokens=600 \\+ max_length=128 exceeds"):
        count(backbone, "lamp", num_tokens=600, pool=1, rank=2)


def _initial_prompt(backbone, config: LAMPConfig) -> torch.Tensor:
    """The PT prompt ``P₀`` the method draws from the same seed (``_build`` passes seed 0)."""
    from methods.prompt_init import init_from_config_

    p0 = torch.zeros(config.num_tokens, backbone.dims.hidden_size)
    init_from_config_(p0, config, backbone, torch.Generator().manual_seed(0))
    return p0


def test_initialisation_is_the_truncated_svd_of_a_pt_prompt(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "lamp", num_tokens="12", rank="3", pool="2", attach=False)
    p0 = _initial_prompt(backbone, method.config)
    u, s, vh = torch.linalg.svd(p0.double(), full_matrices=False)
    best = (u[:, :3] * s[:3]) @ vh[:3]  # Eckart-Young: the best rank-3 approximation of P₀
    ours = (method.left * method.values) @ method.right
    torch.testing.assert_close(ours.double(), best, rtol=1e-5, atol=1e-5)
    # q: P₀'s top singular values; U and V orthonormal
    torch.testing.assert_close(method.values.double(), s[:3], rtol=1e-6, atol=0)
    torch.testing.assert_close(method.left.T @ method.left, torch.eye(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(method.right @ method.right.T, torch.eye(3), rtol=0, atol=1e-5)


def test_full_rank_without_interaction_or_pooling_is_pt_at_step_0(tiny_t5_dir):
    """r = l, no interaction, k = 1: the prompt is P₀ itself, so LAMP starts exactly where PT starts."""
    backbone, method = _build(
        tiny_t5_dir, "lamp", num_tokens="6", rank="6", pool="1", interaction="none", attach=False
    )
    p0 = _initial_prompt(backbone, method.config)
    torch.testing.assert_close(method.prompt(None, None), p0, rtol=1e-5, atol=1e-5)


def test_forward_matches_the_uncompressed_computation(tiny_t5_dir):
    """The interaction is applied to the r-dimensional factors; the same prompt computed in d dimensions
    (P + G P with P = U diag(q) V, then an average pool over blocks of k rows) must agree."""
    _, method = _build(
        tiny_t5_dir, "lamp", num_tokens="12", rank="4", pool="3", temperature="0.5", attach=False
    )
    with torch.no_grad():  # move the factors off their SVD values so every part of the formula matters
        method.left.add_(0.3 * torch.randn_like(method.left))
        method.values.mul_(torch.linspace(0.5, 2.0, 4))
    s = method.left * method.values  # [l, r]
    full = s @ method.right  # P [l, d]
    cos = F.cosine_similarity(s[:, None, :], s[None, :, :], dim=-1)  # [l, l]
    g = torch.softmax(cos / 0.5, dim=-1)
    expected = F.avg_pool1d((full + g @ full).T[None], kernel_size=3, stride=3)[0].T  # [l/k, d]
    got = method.prompt(None, None)
    assert got.shape == (4, 32) and method.num_virtual_tokens == 4
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_labels_name_the_placeholder_variant():
    assert lamp_display_name(LAMPConfig()) == "lamp[placeholder-v0]"
    assert display_name("lamp", config_to_dict(build_config("lamp", {"rank": "4", "pool": "5"}))) == (
        "lamp[placeholder-v0]"  # sizes and rates, which presets set, keep the label
    )
    assert lamp_display_name(build_config("lamp", {"interaction": "none"})) == "lamp[placeholder-v0*]"
    assert lamp_display_name(build_config("lamp", {"temperature": "2"})) == "lamp[placeholder-v0*]"
    assert lamp_display_name(build_config("lamp", {"lamp_variant": "mine"})) == "lamp[mine]"


@pytest.mark.slow
def test_bench_eval_reproduces_the_run_exactly(tiny_bert_dir, make_spec, tmp_path):
    config = {"num_tokens": 8, "rank": 2, "pool": 2}
    spec = make_spec(tiny_bert_dir, train=train_for(tiny_bert_dir), method="lamp", method_config=config)
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    assert record["method_record"]["lamp_variant"] == "placeholder-v0"
    assert record["method_record"]["display_name"] == "lamp[placeholder-v0]"
    assert record["method_record"]["pooled_tokens"] == 4
    reproduced = reevaluate(record, out)
    assert reproduced["test"] == record["metrics"]["test"] and reproduced["dev"] == record["metrics"]["dev"]
    assert main(["eval", spec.run_id, "--out", str(out)]) == 0
