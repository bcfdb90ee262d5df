"""PT-MoE (docs/methods/ptmoe.md): counts on T5-Base and in the quick presets, the SVD initialisation, top-k routing
with training-only noise, the router load in the record, a side-by-side with a reference written from the paper's
equations, and ``bench eval`` reproducing a run exactly."""

from __future__ import annotations

import re

import pytest
import torch

from bench.backbones.load import load_backbone
from bench.cli import main
from bench.run.reeval import reevaluate
from methods.base import Method
from methods.ptmoe import svd_factors
from tests.test_artifacts_eval import run_worker, train_for
from tests.test_methods_train import EXAMPLES, MAX_LENGTH, _build
from tests.test_params import count, preset_counts


def test_ptmoe_on_t5_base(t5_base):
    counts = count(t5_base, "ptmoe")  # N=4, T=100, R=10: 4·100·10 + 10·768 + 4·768 + 4
    assert counts.trainable_params == counts.saved_params == 14_756
    assert counts.breakdown == {"experts": 4_000, "shared": 7_680, "router": 3_076}
    # The formula N·T·R + R·d + N·d + N at other shapes (d = 768).
    for n, t, r in [(1, 100, 10), (8, 40, 36), (2, 5, 5)]:
        got = count(t5_base, "ptmoe", num_experts=n, num_tokens=t, rank=r).trainable_params
        assert got == n * t * r + r * 768 + n * 768 + n, (n, t, r)


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "ptmoe"]) == 0
    assert re.search(r"│ ptmoe\s+│\s+14,756 ", capsys.readouterr().out)


@pytest.mark.parametrize(
    "preset, model, expected",
    [
        ("quick", "minilm", {"pt": 7_680, "ptmoe": 7_572}),
        ("quick-decoder", "smollm2", {"pt": 5_760, "ptmoe": 6_004}),
    ],
)
def test_quick_presets_budgets(preset, model, expected):
    assert preset_counts(preset, model, expected) == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_experts", "0", "num_experts=0 must be >= 1"),
        ("rank", "101", r"rank=101 must be between 1 and min\(num_tokens, hidden size\) = 100"),
        ("top_k", "5", "top_k=5 must be between 1 and num_experts=4"),
        ("noise_std", "-0.5", "noise_std=-0.5 must be >= 0"),
    ],
)
def test_bad_values_are_rejected(t5_base, field, value, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, "ptmoe", **{field: value})


def test_svd_initialisation(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "ptmoe", num_tokens="6", rank="3", attach=False)
    text = backbone.embed_random_vocab(6, torch.Generator().manual_seed(0))  # _build's generator, first draw
    u, s, vh = torch.linalg.svd(text, full_matrices=False)
    best = u[:, :3] @ torch.diag(s[:3]) @ vh[:3]  # the best rank-3 approximation of E
    for a in method.experts:  # every A_i starts as U_R Σ_R^{1/2}
        assert torch.allclose(a @ method.shared, best, atol=1e-5)
        assert torch.equal(a, method.experts[0])
    a, b = svd_factors(text, 3)
    assert torch.allclose(a.T @ a, b @ b.T, atol=1e-5)  # both carry Σ^{1/2}: AᵀA = BBᵀ = Σ_R
    bound = 1 / method.dims.hidden_size**0.5
    assert 0 < float(method.router.weight.detach().abs().max()) <= bound


def test_routing_is_top_k_and_noise_only_trains(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "ptmoe", num_tokens="4", rank="2", attach=False)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    embeds, mask = backbone.embed_ids(batch["input_ids"]), batch["attention_mask"]
    method.train(False)
    w = method.routing(embeds, mask)
    assert torch.equal(w, method.routing(embeds, mask))  # no noise in evaluation
    assert ((w > 0).sum(-1) == 1).all()
    pads = torch.cat([embeds, torch.randn_like(embeds)], 1), torch.cat([mask, torch.zeros_like(mask)], 1)
    assert torch.allclose(method.routing(*pads), w, atol=1e-6)  # pad positions do not enter x̄
    mean = (embeds * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    probs = torch.softmax(method.router(mean), -1)
    assert torch.allclose(w.sum(-1), probs.max(-1).values, atol=1e-6)
    assert method.record()["router_load"]["rows"] == 0  # evaluation forwards are not counted
    method.train(True)
    torch.manual_seed(1)
    noisy = [method.routing(embeds, mask) for _ in range(5)]
    assert any(not torch.equal(n, noisy[0]) for n in noisy)
    load = method.record()["router_load"]
    assert load["experts"] == 4 and load["rows"] == 5 * len(EXAMPLES)
    assert sum(load["share"]) == pytest.approx(1.0)
    method.config.top_k = 2
    assert ((method.routing(embeds, mask) > 0).sum(-1) == 2).all()
    assert method.record()["router_load"]["rows"] == 6 * len(EXAMPLES)


class PaperReference(Method):
    """PT-MoE's prompt from the paper's equations, row by row (arXiv 2505.09519 §3): x̄ the mean embedding of the
    row's real tokens, l = W x̄ + b, l' = l ⊙ (1 + σε) in training, w = softmax(l') kept on argmax l',
    P = Σ_i w_i A_i B. Not registered; its tensors are copied from the method under test."""

    name, attach, formula, paper = "ptmoe_reference", "input", "", ""

    def __init__(self, source: Method) -> None:
        super().__init__(source.config, source.dims)
        self.a = torch.nn.Parameter(source.experts.detach().clone())  # [N, T, R]
        self.b = torch.nn.Parameter(source.shared.detach().clone())  # [R, d]
        self.w = torch.nn.Parameter(source.router.weight.detach().clone())  # [N, d]
        self.bias = torch.nn.Parameter(source.router.bias.detach().clone())  # [N]

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        eps = torch.randn(token_embeds.shape[0], self.a.shape[0]) if self.training else None
        rows = []
        for i in range(token_embeds.shape[0]):
            real = token_embeds[i][attention_mask[i].bool()]  # [s_i, d]
            logits = self.w @ real.mean(0) + self.bias  # [N]
            if eps is not None:
                logits = logits * (1 + self.config.noise_std * eps[i])
            k = int(torch.argmax(logits))
            rows.append(torch.softmax(logits, 0)[k] * (self.a[k] @ self.b))  # [T, d]
        return torch.stack(rows)


def _train(backbone, method, batch, steps: int) -> list[float]:
    optimizer = torch.optim.AdamW(method.parameters(), lr=0.05, weight_decay=1e-5)
    backbone.train(True)
    losses = []
    for step in range(steps):
        torch.manual_seed(100 + step)  # the same noise and dropout draws on both sides
        loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(method.parameters()), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_side_by_side_with_the_paper_equations(tiny_t5_dir):
    """Same tiny T5, same initial tensors, same batch and noise, 10 AdamW steps (docs/methods/ptmoe.md)."""
    backbone, method = _build(tiny_t5_dir, "ptmoe", num_tokens="5", rank="3", noise_std="0.5")
    reference = PaperReference(method)
    other = load_backbone(str(tiny_t5_dir), ["0", "1"], MAX_LENGTH)
    other.attach(reference)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    ours, theirs = _train(backbone, method, batch, 10), _train(other, reference, batch, 10)
    delta = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(f"PT-MoE vs paper-equation reference: max |Δloss| over 10 steps = {delta:.2e}")
    assert delta < 1e-5 and ours[-1] < ours[0]
    with torch.no_grad():
        prompt_delta = float((method.experts @ method.shared - reference.a @ reference.b).abs().max())
    assert prompt_delta < 1e-4
    assert method.record()["router_load"]["rows"] == 10 * len(EXAMPLES)


def test_bench_eval_reproduces_the_run_exactly(tiny_bert_dir, make_spec, tmp_path):
    spec = make_spec(
        tiny_bert_dir,
        train=train_for(tiny_bert_dir),
        method="ptmoe",
        method_config={"num_tokens": 4, "rank": 2},
    )
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    reproduced = reevaluate(record, out)
    assert reproduced["test"] == record["metrics"]["test"] and reproduced["dev"] == record["metrics"]["dev"]
    assert main(["eval", spec.run_id, "--out", str(out)]) == 0
    load = record["method_record"]["router_load"]
    assert load["experts"] == 4 and load["rows"] > 0 and sum(load["share"]) == pytest.approx(1.0)
