"""ACCEPT (docs/methods/accept.md): counts on T5-Base, on the official T5-Small script and in the quick presets, the
official initialisation bounds, the side-by-side with a reference written from the official forward
(AI-Application-and-Integration-Lab/Accept@40bf3b3), and ``bench eval`` reproducing a run exactly."""

from __future__ import annotations

import math
import re

import pytest
import torch

from bench.backbones.load import load_backbone, meta_backbone
from bench.cli import main
from bench.report.published import load_published
from bench.run.reeval import reevaluate
from methods.base import Method
from tests.test_artifacts_eval import run_worker, train_for
from tests.test_methods_train import EXAMPLES, MAX_LENGTH, _build
from tests.test_params import count, preset_counts


def test_accept_on_t5_base(t5_base):
    counts = count(t5_base, "accept")  # m=60, t=32 (K=24), c=20; t'=256 (K'=3), c'=20; s=256
    assert counts.trainable_params == counts.saved_params == 74_880
    assert counts.breakdown == {"scpp": 60 * 24 * 20 + 24 * 20 * 32, "scap": 256 * 3 * 20 + 3 * 20 * 256}
    # The README's budget rule: SCPP within m·d (the official shape comments: W_p (60, 24, 20), C_p (24, 20, 32)),
    # SCAP within (100 - m)·d, so ACCEPT stays within PT's 100 tokens (DePT's 76,800).
    assert counts.breakdown["scpp"] <= 60 * 768 and counts.breakdown["scap"] <= 40 * 768


# The paper's T5-Base count: arXiv 2410.12847, GLUE/SuperGLUE table, column "#Para.", row 'ACCEPT (Ours)', read in
# the copy its README shows: AI-Application-and-Integration-Lab/Accept@40bf3b37690740dfc7efe12490732cbb13f9d535
# image/cp1.png (docs/methods/accept.md#trainable-parameters).
PAPER_T5_BASE = "74.9K"
ACCEPT_REPO = "AI-Application-and-Integration-Lab/Accept@40bf3b37690740dfc7efe12490732cbb13f9d535"


def test_t5_base_count_is_the_papers(t5_base):
    """Our T5-Base count, printed as the paper's table prints counts (76,800 as 76.8K), is the paper's, and it is
    the count of the published ACCEPT row (bench/report/data/published_t5base.csv)."""
    trainable = count(t5_base, "accept").trainable_params
    assert f"{trainable / 1000:.1f}K" == PAPER_T5_BASE
    row = load_published().set_index("method").loc["ACCEPT"]
    assert row["params"] == PAPER_T5_BASE and row["verified"]
    assert row["source"].startswith(f"{ACCEPT_REPO} image/cp1.png, row 'ACCEPT (Ours)'")


def test_accept_on_the_official_t5_small_script():
    """``examples/run_bool_pq_both_largelr_pretrainInit-self_small.sh``: m=40, "32 17 256 30" on T5-Small (d=512)."""
    backbone = meta_backbone("t5-small", 256)
    got = count(
        backbone, "accept", num_tokens=40, sub_dim=32, codewords=17, added_sub_dim=256, added_codewords=30
    ).breakdown
    assert got == {"scpp": 40 * 16 * 17 + 16 * 17 * 32, "scap": 256 * 2 * 30 + 2 * 30 * 256}  # 19,584; 30,720


def test_bench_params_cli(capsys):
    assert main(["params", "--model", "t5-base", "--methods", "accept"]) == 0
    assert re.search(r"│ accept\s+│\s+74,880 ", capsys.readouterr().out)


@pytest.mark.parametrize(
    "preset, model, expected",
    [
        ("quick", "minilm", {"dept": 7_680, "accept": 7_296}),
        ("quick-decoder", "smollm2", {"dept": 6_016, "accept": 5_724}),
    ],
)
def test_quick_presets_budgets(preset, model, expected):
    assert preset_counts(preset, model, expected) == expected


@pytest.mark.parametrize(
    "field, value, message",
    [("codewords", "0", "codewords=0 must be >= 1"), ("lr_added", "0", "lr_added=0.0 must be > 0")],
)
def test_bad_values_are_rejected(t5_base, field, value, message):
    with pytest.raises(ValueError, match=message):
        count(t5_base, "accept", **{field: value})


def test_widths_that_do_not_divide_d_fall_to_a_divisor(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "accept", attach=False)  # d=32: t=32 stays, t'=256 becomes 32
    assert method.record() == {"sub_dim": 32, "added_sub_dim": 32}
    _, method = _build(tiny_t5_dir, "accept", sub_dim="12", added_sub_dim="16", attach=False)
    assert method.record() == {"sub_dim": 8, "added_sub_dim": 16}


def test_official_initialisation_bounds(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "accept", sub_dim="8", codewords="3", added_sub_dim="16", attach=False)
    expected = {  # nn.init.kaiming_uniform_ on 3-D tensors: fan_in = size(1)·size(2)
        "prompt_weight": 1 / math.sqrt(4 * 3),  # a=√5
        "prompt_codebook": 1 / math.sqrt(3 * 8),
        "added_weight": 1 / math.sqrt(2 * 20),
        "added_codebook": math.sqrt(6 / (20 * 16)),  # a=0
    }
    for name, bound in expected.items():
        top = float(getattr(method, name).detach().abs().max())
        assert 0.7 * bound < top <= bound, name


class OfficialReference(Method):
    """The official forward (``PromptEmbeddingLoRA.forward`` and ``PeftModelForSeq2SeqLM.forward``, branch
    ``PROMPT_TUNING_LORA`` with ``scpp`` and ``scap`` on): the prompt is ``sum(W_p[..., None] * C_p[None], dim=2)``
    viewed as ``[m, d]`` and repeated over the batch; the added prompt, built the same way from ``W_a``, ``C_a``
    as ``[max_length, d]``, is added to all ``max_length`` input embeddings (no scaling). Not registered."""

    name, attach, formula, paper = "accept_reference", "input", "", ""

    def __init__(self, source: Method) -> None:
        super().__init__(source.config, source.dims)
        for name in ("prompt_weight", "prompt_codebook", "added_weight", "added_codebook"):
            setattr(self, name, torch.nn.Parameter(getattr(source, name).detach().clone()))

    @property
    def num_virtual_tokens(self) -> int:
        return self.config.num_tokens

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rows = torch.sum(self.prompt_weight.unsqueeze(-1) * self.prompt_codebook.unsqueeze(0), dim=2)
        return rows.view(self.config.num_tokens, -1).unsqueeze(0).repeat(token_embeds.shape[0], 1, 1)

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        added = torch.sum(self.added_weight.unsqueeze(-1) * self.added_codebook.unsqueeze(0), dim=2)
        added = added.view(self.added_weight.shape[0], -1)  # [max_length, d]: inputs padded to max_length
        return token_embeds + added.unsqueeze(0).repeat(token_embeds.shape[0], 1, 1)


def _train(backbone, method, batch, steps: int) -> list[float]:
    """``train.py``'s optimiser: AdamW with the two groups (SCPP at lr, SCAP at added_embedding_lr), linear
    schedule after warm-up; PyTorch's AdamW (eps 1e-6, no weight decay) on both sides."""
    added = [method.added_weight, method.added_codebook]
    others = [method.prompt_weight, method.prompt_codebook]
    optimizer = torch.optim.AdamW(
        [{"params": others}, {"params": added, "lr": 0.05}], lr=0.3, eps=1e-6, weight_decay=0.0
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min((i + 1) / 3, (steps - i) / steps))
    backbone.train(True)
    losses = []
    for step in range(steps):
        torch.manual_seed(100 + step)  # the same dropout draws on both sides
        loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*others, *added], 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_side_by_side_with_the_official_forward(tiny_t5_dir):
    """Same tiny T5, same initial tensors, same batch, 10 steps (docs/methods/accept.md#side-by-side)."""
    overrides = {
        "num_tokens": "5",
        "sub_dim": "8",
        "codewords": "3",
        "added_sub_dim": "16",
        "added_codewords": "2",
    }
    backbone, method = _build(tiny_t5_dir, "accept", **overrides)
    reference = OfficialReference(method)
    other = load_backbone(str(tiny_t5_dir), ["0", "1"], MAX_LENGTH)
    other.attach(reference)
    batch = backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))
    assert batch["input_ids"].shape[1] == MAX_LENGTH  # padded to s, as the official code requires
    ours, theirs = _train(backbone, method, batch, 10), _train(other, reference, batch, 10)
    delta = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(f"ACCEPT vs official forward: max |Δloss| over 10 steps = {delta:.2e}")
    assert delta < 1e-5 and ours[-1] < ours[0]


def test_bench_eval_reproduces_the_run_exactly(tiny_bert_dir, make_spec, tmp_path):
    config = {"num_tokens": 4, "sub_dim": 8, "codewords": 3, "added_sub_dim": 16, "added_codewords": 2}
    spec = make_spec(tiny_bert_dir, train=train_for(tiny_bert_dir), method="accept", method_config=config)
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    reproduced = reevaluate(record, out)
    assert reproduced["test"] == record["metrics"]["test"] and reproduced["dev"] == record["metrics"]["dev"]
    assert main(["eval", spec.run_id, "--out", str(out)]) == 0
    assert record["method_record"] == {**record["method_record"], "sub_dim": 8, "added_sub_dim": 16}
