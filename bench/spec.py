"""A run's full specification and its identity.

``RunSpec`` is everything that decides a run's outcome: suite, task, method and its full config, model,
preset, seed, training settings and data settings. ``run_id`` is a hash of it, so a re-run of the same command
finds the finished record and skips it, and runs with different settings never share a record.

The data folder's *location* is not part of the hash (moving the data must not invalidate results); which
source was used ("local" or "hub") is, and each record stores the folder and the hashes of the files read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.errors import InputError
from bench.fields import set_config_field

SPEC_VERSION = 1
# Training fields added after records existed, hashed only when they differ from these values: a run that does
# not use one keeps the run id it had before the field existed, so its record is still found and skipped.
HASHED_UNLESS_DEFAULT = {"head_weight_decay": 0.0}
PRECISIONS = ("fp32", "tf32", "bf16")  # train.precision's choices (bench/training/precision.py)


@dataclass
class TrainConfig:
    """The training loop's settings; defaults are the lineage's common defaults (docs/protocol.md#common-training-settings)."""

    batch_size: int = 32
    max_steps: int = 30_000
    warmup_steps: int = 500
    # After the linear warm-up: "linear" decays to 0 at max_steps (the lineage's schedule), "constant" keeps the
    # peak rate (PEFT's and the prompt-tuning paper's plain recipe; measured in docs/quick-recipe.md).
    schedule: Literal["linear", "constant"] = "linear"
    eval_every: int = 1_000
    max_length: int = 256  # s: sources truncated to this length (and padded to it with padding="max_length")
    # "longest": each batch is cut to its longest row (dynamic padding; results on real tokens are those of
    # "max_length", methods whose outputs read pad positions always get s, see Method.pad_positions_matter);
    # "max_length": every batch is s wide, the papers' protocol (the paper preset uses it).
    padding: Literal["longest", "max_length"] = "longest"
    eval_batch_size: int = 64
    grad_clip: float = 1.0
    # The task head of encoder backbones (its own parameter group): a rate, or None for the method's own ``lr``
    # (the quick presets: one rule for every method, where a fixed head rate suits some methods' rates only;
    # docs/quick-recipe.md#lora-and-the-head-rate).
    head_lr: float | None = 1e-3
    # The head's AdamW decay. 0 is the harness's recipe; 0.01 is AdamW's default, which a plain PEFT run puts on
    # everything it trains, head included (docs/quick-recipe.md#ptbench-with-pefts-recipe-is-the-plain-run).
    # Added after records existed: left out of the run id at 0 (HASHED_UNLESS_DEFAULT).
    head_weight_decay: float = 0.0
    max_train_samples: int | None = None  # a fixed random subset (seed 42), the same for every run seed
    max_eval_samples: int | None = None  # cap on dev and test sizes (first rows of each split)
    eval_mode: Literal["generate", "score"] = "generate"  # seq2seq: greedy decoding or label scoring
    timing_warmup_steps: int = 10  # steps excluded from the median step time
    split_seed: int = 42  # the protocol's validation/test carving seed (docs/protocol.md#splits)
    # A non-finite loss: "stop" fails the run at that step; "skip" drops the batch (no update) and counts it,
    # failing the run after max_nan_skips consecutive skipped batches.
    nan_policy: Literal["stop", "skip"] = "stop"
    max_nan_skips: int = 10
    # How an encoder backbone reads a task's text (docs/protocol.md#text-formats): "dept", the lineage's
    # "name: value" source as one segment; "segments", the field values alone as BERT segments (A [SEP] B,
    # token types 0/1), the input BERT was pretrained on and a plain PEFT run feeds it. Only encoders read
    # it: seq2seq and decoder backbones have no segments and always get the "dept" source.
    encoder_text: Literal["dept", "segments"] = "dept"
    # Where an encoder's input prompt goes: "after_cls" (the head reads the real [CLS]) or "first" (in front of
    # [CLS], PEFT's placement, so BERT's pooler reads the first virtual token). Encoders only.
    encoder_prompt_position: Literal["after_cls", "first"] = "after_cls"
    # The backbone's dropout (every dropout field of its config): None keeps the checkpoint's (BERT/T5 0.1),
    # 0 is a frozen-model prompt-tuning recipe (measured in docs/quick-recipe.md). Methods' own
    # dropout (LoRA's, a prefix MLP's) is their config's.
    dropout: float | None = None
    # The training-loss curve: one metrics["loss_history"] entry per log_every updated steps, the mean loss
    # of that window (and what --log-dir writes to TensorBoard); docs/records.md#learning-curves.
    log_every: int = 10
    # fp32 | tf32 (CUDA tensor cores; fp32 on a CPU, noted in the record) | bf16 (autocast, fp32 master weights);
    # bench/training/precision.py, docs/protocol.md#precision
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"

    def head_rate(self, method_lr: float) -> float:
        """The task head's learning rate: ``head_lr``, or the method's ``lr`` where it is None."""
        return method_lr if self.head_lr is None else self.head_lr

    def validate(self) -> None:
        checks = [
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("max_steps", self.max_steps >= 1, ">= 1"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("schedule", self.schedule in ("linear", "constant"), "one of 'linear', 'constant'"),
            ("encoder_text", self.encoder_text in ("dept", "segments"), "one of 'dept', 'segments'"),
            (
                "encoder_prompt_position",
                self.encoder_prompt_position in ("after_cls", "first"),
                "one of 'after_cls', 'first'",
            ),
            ("eval_every", self.eval_every >= 1, ">= 1"),
            ("max_length", 8 <= self.max_length <= 8192, "between 8 and 8192"),
            ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
            ("grad_clip", self.grad_clip >= 0, ">= 0 (0 disables clipping)"),
            ("head_lr", self.head_lr is None or self.head_lr > 0, "> 0 or None (the method's lr)"),
            ("head_weight_decay", self.head_weight_decay >= 0, ">= 0"),
            ("max_train_samples", self.max_train_samples is None or self.max_train_samples >= 1, ">= 1"),
            ("max_eval_samples", self.max_eval_samples is None or self.max_eval_samples >= 1, ">= 1"),
            ("timing_warmup_steps", self.timing_warmup_steps >= 0, ">= 0"),
            ("max_nan_skips", self.max_nan_skips >= 1, ">= 1"),
            (
                "dropout",
                self.dropout is None or 0.0 <= self.dropout < 1.0,
                "in [0, 1) or None (the checkpoint's)",
            ),
            ("log_every", self.log_every >= 1, ">= 1"),
            ("precision", self.precision in PRECISIONS, "one of " + ", ".join(PRECISIONS)),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise InputError(f"train.{name}={getattr(self, name)!r} must be {allowed}")

    def set(self, dotted: str, value: Any) -> None:
        set_config_field(self, dotted, value, where=f"train.{dotted}")


@dataclass
class RunSpec:
    suite: str
    task: str
    method: str
    method_config: dict[str, Any]
    model: str
    preset: str
    seed: int
    train: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)  # {"source": "local"|"hub", "dir": path (not hashed)}
    protocol: str = "dept"
    # Resolved source prompts of transfer methods (``bench/planning/sources.py``), in the config's order: one dict per
    # item, ``{"item", "kind": "run"|"file", "run_id" | "sha256", "task", "method", "seed", "path"}``. Empty for
    # every other method, and then left out of the hash, so run ids of non-transfer runs are unchanged.
    sources: list[dict[str, Any]] = field(default_factory=list)
    # A search trial (``bench tune``): {"study": name, "trial": number}. Trials are dev-only (the test split is
    # never evaluated) and hashed apart from normal runs; left out of the hash when None, so normal runs keep
    # their run_ids.
    trial: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """What the hash covers: the spec without the data folder's location (nor the source files'),
        ``sources``/``trial`` only when set, and the training fields of ``HASHED_UNLESS_DEFAULT`` only when
        they differ from their default."""
        ident = dataclasses.asdict(self)
        ident["data"] = {k: v for k, v in self.data.items() if k != "dir"}
        ident["train"] = {
            k: v
            for k, v in self.train.items()
            if not (k in HASHED_UNLESS_DEFAULT and v == HASHED_UNLESS_DEFAULT[k])
        }
        if self.sources:
            ident["sources"] = [{k: v for k, v in s.items() if k != "path"} for s in self.sources]
        else:
            del ident["sources"]
        if ident["trial"] is None:
            del ident["trial"]
        ident["spec_version"] = SPEC_VERSION
        return ident

    @property
    def run_id(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.method} on {self.suite}/{self.task} seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**data)

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.train)
