"""Presets: named bundles of model, training settings and per-method/per-task config overrides.

Resolution order for a run: method config defaults (the paper's) -> preset per-method overrides -> preset
per-task-per-method overrides -> the user's ``--set``. Training settings: ``TrainConfig`` defaults -> preset ->
preset per-task -> CLI flags (``--max-steps``, ``--max-train-samples``) -> ``--set train.*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.registry import Registry

if TYPE_CHECKING:
    from bench.spec import RunSpec


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: str
    train: dict[str, Any]
    task_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    method: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_method: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # task -> method -> fields
    # Long runs checkpoint without being asked: True saves each run's state at every dev evaluation
    # (``train.eval_every``), so a run killed on a cluster (a Slurm time limit, a preemption) loses at most one
    # evaluation interval when it runs again. Not part of the spec (run ids do not depend on it);
    # ``--checkpoint-every`` overrides it (``checkpoint_interval``).
    checkpoint_at_eval: bool = False


# DePT's per-task settings of the released Table-1 checkpoints (docs/methods/dept.md): m, r, lr, low-rank lr, steps.
_DEPT_TABLE = {
    "cola": (80, 15, 0.3, 5e-4, 40_000),
    "mrpc": (60, 30, 0.3, 5e-3, 10_000),
    "rte": (60, 30, 0.4, 1e-4, 30_000),
    "stsb": (60, 30, 0.3, 1e-4, 30_000),
    "sst2": (60, 30, 0.3, 5e-4, 30_000),
    "qnli": (60, 30, 0.4, 5e-3, 100_000),
    "qqp": (60, 30, 0.4, 5e-3, 100_000),
    "mnli": (60, 30, 0.3, 1e-4, 250_000),
    "boolq": (40, 45, 0.3, 5e-3, 30_000),
    "cb": (60, 30, 0.4, 1e-4, 30_000),
    "multirc": (60, 30, 0.3, 5e-3, 30_000),
    "wic": (60, 30, 0.3, 1e-3, 20_000),
    "wsc": (60, 30, 0.3, 1e-4, 20_000),
}


def _dept_task_overrides() -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for task, (m, r, lr, lr_low, _) in _DEPT_TABLE.items():
        fields = {"num_tokens": m, "rank": r, "lr": lr, "lr_lowrank": lr_low}
        out[task] = {"dept": dict(fields), "ept": dict(fields)}  # EPT: "everything else as DePT" (§4.2)
    return out


# Source tasks of the source-prompt methods (docs/methods/attempt.md, docs/methods/mpt.md): the paper preset's "glue4" (ATTEMPT's own
# sources also include SQuAD and ReCoRD, which the harness does not have); the quick preset uses sources whose
# train files exist in the shared data folder (MNLI, QNLI and QQP train files do not).
_SOURCES_GLUE4 = "mnli,qnli,qqp,sst2"
_SOURCES_QUICK = "sst2,mrpc"

# ADePT and ULPT (docs/methods/adept.md#defaults, docs/methods/ulpt.md#defaults): the official READMEs' settings,
# the same for every task (their repositories give no per-task table). They train under this preset's shared
# settings (batch 32, DePT's per-task steps); ULPT's README uses batch 16 (see its docs page).
_PAPER_LINEAGE = {
    "adept": {"num_tokens": 60, "rank": 19, "lr": 0.3, "lr_lowrank": 1e-4},
    "ulpt": {"num_tokens": 100, "rank": 2, "lr": 0.6},
}
# PT-MoE (docs/methods/ptmoe.md#defaults): the paper's hyperparameter values could not be read (its repository
# has no code), so the paper preset runs the method's defaults on every task: DPT's T5-Base shape T=100, R=10,
# SMoP's N=4 experts, top-1 routing, PT's lr 0.3 (14,756 trainable on T5-Base).
_PAPER_MOE = {"ptmoe": {"num_tokens": 100, "num_experts": 4, "rank": 10, "top_k": 1, "lr": 0.3}}
# ACCEPT (docs/methods/accept.md#defaults): the official T5-Base script's SCPP (m=60, t=32, c=20) and an SCAP filling
# the README's rule (at most (100 - m)·d) with t'=256, c'=20, at the script's rates, on every task.
_PAPER_ACCEPT = {
    "accept": {"num_tokens": 60, "sub_dim": 32, "codewords": 20, "added_sub_dim": 256, "added_codewords": 20}
}

# SMoP (docs/methods/smop.md#defaults): the official README's k=4 prompts of l=5, lr 0.5 and the official
# script's Adafactor for T5 (the method's own defaults, repeated so the preset states them).
# MEPT (docs/methods/mept.md#defaults): the official script's l=10 tokens, k=4 prompts (40 in all), every encoder
# block, Adafactor with its default decay 1e-2; lr 0.5 as SMoP's (the official README leaves the rate open).
_PAPER_MIXTURE = {
    "smop": {"num_tokens": 5, "num_experts": 4, "lr": 0.5, "optimizer": "adafactor"},
    "mept": {"num_tokens": 10, "num_experts": 4, "layers": "all", "lr": 0.5, "optimizer": "adafactor"},
}

PAPER = Preset(
    name="paper",
    description="the papers' settings: T5-Base, s=256 (MultiRC 348), batch 32, DePT's per-task steps, eval every 1k",
    model="t5-base",
    train={
        "batch_size": 32,
        "max_length": 256,
        "padding": "max_length",  # the papers pad every input to s (results on real tokens are the same)
        "warmup_steps": 500,
        "eval_every": 1_000,
        "grad_clip": 1.0,
        "log_every": 100,  # 100 to 2,500 loss points over DePT's 10k-250k steps
    },
    task_train={
        **{task: {"max_steps": steps} for task, (*_, steps) in _DEPT_TABLE.items()},
        "multirc": {"max_steps": 30_000, "max_length": 348},
    },
    task_method=_dept_task_overrides(),
    checkpoint_at_eval=True,  # 10k-250k steps of T5-Base: hours to days per run
    method={
        "attempt": {"sources": _SOURCES_GLUE4},
        "mpt": {"sources": _SOURCES_GLUE4},
        **_PAPER_LINEAGE,
        **_PAPER_MIXTURE,
        **_PAPER_MOE,
        **_PAPER_ACCEPT,
    },
)

# Quick preset: the packaged MiniLM on 2 CPU cores in minutes. Prompt budgets are scaled to the smaller model
# and kept budget-matched as in the papers: PT with l=20 (the reference point) has 20·384 = 7,680
# parameters; DePT and EPT use m=12 (m/l = 0.6 as 60/100 in the paper) and r=6: 12·384 + 6·(128+384) = 7,680.
# BERT normalises the prompt with its embedding LayerNorm, so T5-era rates (0.3) are too high here: PT with 20
# tokens reaches ~76% SST-2 dev at lr 3e-2 but ~67% at 0.3 (AdamW, 1k examples, 200 steps of 16). The head
# must train at the same rate: with head lr 1e-3 PT stays at the majority class. The rates below come from a
# sweep on SST-2 dev recorded in docs/usage.md#where-the-quick-preset-numbers-come-from.
_QUICK_DECOMPOSED = {"num_tokens": 12, "rank": 6, "lr": 3e-2, "lr_lowrank": 1e-3}
# Residual PT, DPT and XPrompt in the quick preset: the same l=20 prompt and lr 3e-2 as PT, and each method's
# own shape kept in proportion to the paper's T5-Base setting. Residual PT: b = 4·l = 80, so the MLP is ~8x
# the prompt as with l=100, b=400 on T5-Base (70,352 trainable vs 693,904; ratio to PT 9.2 vs 9.0); what it
# saves (P') is PT's 7,680. DPT: b = l/10 = 2, keeping DPT's ~10x reduction against PT (808 vs 7,680; paper
# 8,680 vs 76,800). XPrompt: k = 16 pieces of 24 dims; 8 scoring batches instead of 32 to stay in minutes
# (each of the two stages trains max_steps, so a run costs about 2x PT).
# ADePT and ULPT in the quick preset (docs/methods/adept.md#quick-presets): ADePT keeps DePT's m = 0.6·l = 12 and
# takes the FFN width r that brings it closest to PT's 7,680: r=3 gives 12·384 + 2·384·3 + 3 + 384 = 7,299 (r=4:
# 8,068), at DePT's quick rates. ULPT keeps PT's l=20 tokens (its budget is the point: 20·2 + 2·384 = 808) at
# twice PT's rate, as 0.6 against 0.3 in the papers. LAMP (docs/methods/lamp.md#quick-presets): PT's l, k=2, r/l ≈ 8/100.
_QUICK_LINEAGE = {
    "adept": {"num_tokens": 12, "rank": 3, "lr": 3e-2, "lr_lowrank": 1e-3},
    "ulpt": {"num_tokens": 20, "rank": 2, "lr": 6e-2},
    "lamp": {"num_tokens": 20, "rank": 2, "pool": 2, "lr": 3e-2, "lr_values": 0.3},  # 2·(20 + 384 + 1) = 810
}
# SMoP in the quick presets (docs/methods/smop.md#quick-presets): k=4 prompts as in the paper, l chosen for PT's
# budget: 4·4·384 + 4·384 = 7,680 on MiniLM; on SmolLM2 l=2 gives 4·2·576 + 4·576 = 6,912 against PT's 5,760
# (l=1 would give 4,608). AdamW as every quick method, at 4x PT's rate: the chosen prompt enters scaled by its
# router probability, about 1/k at the start.
# MEPT (docs/methods/mept.md#quick-presets): k=2 prompts of l=1 plus the shared one, (2·1 + 2 + 1)·d per layer,
# on the first layers that match PT's budget: 4 of MiniLM's 6 (4·5·384 = 7,680) and 2 of SmolLM2's 30
# (2·5·576 = 5,760); AdamW at 2x PT's rate (the routed prompt enters scaled by p, about 1/k = 1/2 at the start).
_QUICK_MEPT = {"num_tokens": 1, "num_experts": 2, "lr": 6e-2, "optimizer": "adamw"}
_QUICK_MIXTURE = {
    "smop": {"num_tokens": 4, "num_experts": 4, "lr": 0.12, "optimizer": "adamw"},
    "mept": {**_QUICK_MEPT, "layers": "0,1,2,3"},
}
_QUICK_DECODER_MIXTURE = {
    "smop": {"num_tokens": 2, "num_experts": 4, "lr": 0.12, "optimizer": "adamw"},
    "mept": {**_QUICK_MEPT, "layers": "0,1"},
}
# PT-MoE in the quick preset (docs/methods/ptmoe.md#quick-presets): PT's l=20 tokens, 4 experts and the rank that
# brings N·T·R + R·d + N·d + N closest to PT's 7,680: R=13 gives 1,040 + 4,992 + 1,540 = 7,572 (R=14: 8,036).
_QUICK_MOE = {"ptmoe": {"num_tokens": 20, "num_experts": 4, "rank": 13, "lr": 3e-2}}
# ACCEPT in the quick preset (docs/methods/accept.md#quick-presets): DePT's m=12, the SCPP within 12·384 = 4,608
# (t=32, c=8: 4,224) and the SCAP within (20 - 12)·384 = 3,072 (t'=128, c'=4: 3,072), at DePT's quick rates.
_QUICK_ACCEPT = {
    "accept": {
        **{"num_tokens": 12, "sub_dim": 32, "codewords": 8, "added_sub_dim": 128, "added_codewords": 4},
        **{"lr": 3e-2, "lr_added": 1e-3},
    }
}
# AdamW's default decay, which the plain PEFT run's one optimiser puts on every trainable tensor.
_PEFT_WEIGHT_DECAY = 0.01


def _with_peft_decay(methods: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every method's fields plus ``weight_decay=0.01``: the quick recipe is one recipe for all methods."""
    return {name: {**fields, "weight_decay": _PEFT_WEIGHT_DECAY} for name, fields in methods.items()}


_QUICK_INPUT_BASELINES = {
    "residual_pt": {"num_tokens": 20, "bottleneck": 80, "lr": 3e-2, "mlp_lr": 3e-2},
    "dpt": {"num_tokens": 20, "bottleneck": 2, "lr": 3e-2},
    "xprompt": {"num_tokens": 20, "lr": 3e-2, "score_batches": 8},
}
QUICK = Preset(
    name="quick",
    description="packaged MiniLM (CPU), <=1,000 train examples, 200 steps of 16, s=128: minutes per run",
    model="minilm",
    train={
        "batch_size": 16,
        "max_steps": 200,
        "max_length": 128,
        "eval_batch_size": 64,
        "max_train_samples": 1_000,
        "max_eval_samples": 500,
        # PEFT's own recipe (docs/quick-recipe.md#what-the-quick-preset-ships): a constant rate without warm-up,
        # the checkpoint's dropout (0.1), one evaluation at the end (the last step is kept), AdamW's default
        # decay 0.01 on the head and on every method's tensors, the prompt in front of [CLS]; the fields read as
        # BERT segments (PEFT's user tokenises a pair) and the head at the method's own rate (PEFT's one
        # optimiser). Given it, ptbench's PT and LoRA train bit for bit as the plain PEFT script on one machine.
        "schedule": "constant",
        "warmup_steps": 0,
        "eval_every": 200,
        "encoder_text": "segments",
        "encoder_prompt_position": "first",
        "dropout": 0.1,
        "head_lr": None,
        "head_weight_decay": _PEFT_WEIGHT_DECAY,
        "log_every": 10,  # 20 loss points over 200 steps
    },
    method=_with_peft_decay(
        {
            # PT's prompt drawn as PEFT's PromptTuningConfig draws it: N(0, 1) from the global generator.
            "pt": {"num_tokens": 20, "lr": 3e-2, "init": "peft_random"},
            "dept": dict(_QUICK_DECOMPOSED),
            "ept": {**_QUICK_DECOMPOSED, "lr_modules": 1e-3},
            # SPoT as PT; MNLI is not in the local data, so the quick source is SST-2 (the paper's is MNLI).
            "spot": {"num_tokens": 20, "lr": 3e-2, "source": "sst2"},
            # As PT's quick settings (l=20, lr 3e-2). ATTEMPT: input summary over real tokens (non-T5 port, §3.8)
            # and the temperature rescaled by the paper's rule T = d·e (2087 for d=768) to MiniLM's d=384.
            "attempt": {
                "num_tokens": 20,
                "lr": 3e-2,
                "sources": _SOURCES_QUICK,
                "summary_over": "real_tokens",
                "temperature": 1044.0,
            },
            "mpt": {"num_tokens": 20, "lr": 3e-2, "sources": _SOURCES_QUICK},
            **_QUICK_INPUT_BASELINES,
            **_QUICK_LINEAGE,
            **_QUICK_MIXTURE,
            **_QUICK_MOE,
            **_QUICK_ACCEPT,
            # LPT keeps the paper's l=5, b=128 (NPG, 296,960 parameters on MiniLM; not budget-matched) and inserts at
            # 3 of 6 layers; lr 1e-2 over the paper's 1e-3: 40 steps on SST-2 gave 78.5 vs 69.5 dev (docs/methods/lpt.md#quick-presets).
            "lpt": {"lr": 1e-2},
            # Reference rows on MiniLM (rates for 200 steps; not swept, see docs/usage.md#reference-rows-and-prefix-tuning).
            # LoRA at PEFT's default α = 8 (the harness's own default is 16): the r=8, α=8 q/v configuration of the
            # plain PEFT run it is compared with; 3 seeds on SST-2 dev 85.5 against 84.3 (docs/quick-recipe.md).
            "lora": {"lr": 3e-3, "alpha": 8.0},
            "finetune": {"lr": 1e-4},
            "bitfit": {"lr": 3e-3},
            "adapter": {"lr": 1e-3},
            "ptuning": {"num_tokens": 20, "lr": 3e-3},
            # Prefix tuning: l=20 with the MLP (h=512) as the default; rate not swept (docs/usage.md#reference-rows-and-prefix-tuning).
            "prefix": {"num_tokens": 20, "lr": 3e-3},
        }
    ),
)

# Quick decoder preset: the packaged SmolLM2-135M (a real Llama-style causal LM) on 2 CPU cores. Its 30 layers at
# d=576 cost several times MiniLM's per token, so sequences are short (s=64 covers SST-2's sentences with the
# cue and target; longer sources are truncated from their end) and batches small. Budgets stay matched as in
# the quick preset: PT l=10 (5,760 = 10·576) against DePT/EPT m=6, r=4 (6·576 + 4·(64+576) = 6,016). Label
# scoring is the decoder default (docs/decoder.md); rates from docs/decoder.md (search around 1e-3) and a
# short SST-2 check recorded in docs/decoder.md#learning-rates.
_QUICK_DECODER_DECOMPOSED = {"num_tokens": 6, "rank": 4, "lr": 3e-2, "lr_lowrank": 1e-3}
# The other methods on quick-decoder, scaled from the quick preset as PT/DePT/EPT are: every prompt l=10 at PT's
# rate; Residual PT b = 4·l = 40 and DPT b = l/10 = 1 (each method's shape in proportion, as on MiniLM); sources
# of SPoT/ATTEMPT/MPT: SST-2 (MNLI, the papers' source, is not in the local data); ATTEMPT summarises real tokens
# (the decoder hands it the prefix only) with T = d·e = 1,566 for d=576. LPT keeps the paper's l=5, b=128 NPG and
# inserts at 15 of 30 layers. Reference rows use the quick preset's rates on MiniLM (not swept on SmolLM2).
_QUICK_DECODER_PROMPT = {"num_tokens": 10, "lr": 3e-2}
_QUICK_DECODER_OTHERS: dict[str, dict[str, Any]] = {
    "spot": {**_QUICK_DECODER_PROMPT, "source": "sst2"},
    "attempt": {
        **_QUICK_DECODER_PROMPT,
        "sources": "sst2",
        "summary_over": "real_tokens",
        "temperature": 1566.0,
    },
    "mpt": {**_QUICK_DECODER_PROMPT, "sources": "sst2"},
    "residual_pt": {**_QUICK_DECODER_PROMPT, "bottleneck": 40, "mlp_lr": 3e-2},
    "dpt": {**_QUICK_DECODER_PROMPT, "bottleneck": 1},
    "xprompt": {**_QUICK_DECODER_PROMPT, "score_batches": 8},
    "lpt": {"lr": 1e-2},
    "lora": {"lr": 3e-3},
    "finetune": {"lr": 1e-4},
    "bitfit": {"lr": 3e-3},
    "adapter": {"lr": 1e-3},
    "ptuning": {"num_tokens": 10, "lr": 3e-3},
    # ADePT m = 0.6·l = 6 with r=2: 6·576 + 2·576·2 + 2 + 576 = 6,338 against PT's 5,760 (r=1, a one-unit FFN,
    # would give 5,185); ULPT with PT's l=10 at twice PT's rate: 10·2 + 2·576 = 1,172.
    "adept": {**_QUICK_DECODER_DECOMPOSED, "rank": 2},
    "ulpt": {"num_tokens": 10, "rank": 2, "lr": 6e-2},
    # LAMP as on MiniLM (docs/methods/lamp.md#quick-presets): l=10, k=2, r=1: 10 + 576 + 1 = 587.
    "lamp": {"num_tokens": 10, "rank": 1, "pool": 2, "lr": 3e-2, "lr_values": 0.3},
    # PT-MoE with PT's l=10, 4 experts, R=6: 240 + 3,456 + 2,308 = 6,004 against PT's 5,760 (R=5: 5,388).
    "ptmoe": {"num_tokens": 10, "num_experts": 4, "rank": 6, "lr": 3e-2},
    # ACCEPT with DePT's m=6: SCPP t=32, c=5 (3,420 within 6·576) and SCAP t'=192, c'=3 (2,304 within 4·576).
    "accept": {
        **{"num_tokens": 6, "sub_dim": 32, "codewords": 5, "added_sub_dim": 192, "added_codewords": 3},
        **{"lr": 3e-2, "lr_added": 1e-3},
    },
}
QUICK_DECODER = Preset(
    name="quick-decoder",
    description="packaged SmolLM2-135M causal LM (CPU), <=1,000 train examples, 100 steps of 8, s=64",
    model="smollm2",
    train={
        "batch_size": 8,
        "max_steps": 100,
        "warmup_steps": 10,
        "eval_every": 50,
        "max_length": 64,
        "eval_batch_size": 32,
        "max_train_samples": 1_000,
        "max_eval_samples": 200,
        "eval_mode": "score",
        "log_every": 5,  # 20 loss points over 100 steps
    },
    method={
        "pt": dict(_QUICK_DECODER_PROMPT),
        "dept": dict(_QUICK_DECODER_DECOMPOSED),
        "ept": {**_QUICK_DECODER_DECOMPOSED, "lr_modules": 1e-3},
        "prefix": {"num_tokens": 10, "lr": 3e-3},
        **_QUICK_DECODER_OTHERS,
        **_QUICK_DECODER_MIXTURE,
    },
)

PRESETS: Registry[Preset] = Registry("preset")
for _preset in (PAPER, QUICK, QUICK_DECODER):
    PRESETS.register(_preset.name, _preset)


def get_preset(name: str) -> Preset:
    return PRESETS.lookup(name)


def method_overrides(preset: Preset, task: str, method: str) -> dict[str, Any]:
    return {**preset.method.get(method, {}), **preset.task_method.get(task, {}).get(method, {})}


def checkpoint_interval(spec: RunSpec, override: int | None = None) -> int | None:
    """Every how many steps ``spec``'s run saves its state, None for never: ``override`` (``--checkpoint-every``;
    0 turns checkpoints off) if given, else the preset's default (``Preset.checkpoint_at_eval``: each dev
    evaluation). Every executor asks this for each run, so an array task on a cluster checkpoints as a local
    run does; a preset not registered here (none) has no default."""
    if override is not None:
        return override or None
    preset = PRESETS.get(spec.preset)
    return spec.train_config().eval_every if preset is not None and preset.checkpoint_at_eval else None


def train_overrides(preset: Preset, task: str) -> dict[str, Any]:
    return {**preset.train, **preset.task_train.get(task, {})}
