"""One training step of a run's shapes, counted without computing the model: parameters, the bytes autograd
saves for backward, and FLOPs.

The backbone and its method are built on the ``meta`` device from the model's config (no weights), their
tensors re-wrapped as CPU fake tensors (``FakeTensorMode``: shapes, dtypes and kernel choices of a real CPU
run, no data), and one forward + backward runs at ``[batch, seq_len]`` under the run's precision with
``saved_tensors_hooks`` recording each saved tensor's storage (counted once per storage, parameters left out)
and ``FlopCounterMode`` the FLOPs. T5-Base at batch 32 takes seconds. ``count_saved`` is the same counter a
real forward/backward is measured with (tests/test_cost.py compares the two).

Decoder backbones index their target tokens data-dependently (``nonzero``), which fake tensors cannot run:
they are counted on real one- and two-row forwards of a randomly initialised model and extrapolated linearly
to the batch (saved bytes and FLOPs are affine in the batch at a fixed length).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from types import SimpleNamespace

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from bench.backbones.load import _build, set_dropout
from bench.backbones.models import load_config, model_family
from bench.fields import flatten_config
from bench.run.assemble import attach_method
from bench.training.optim import trainable_parameters
from methods.registry import build_config, get_method_class
from methods.source_prompts import parse_sources

DECODER_REAL_LIMIT = 1_000_000_000  # parameters: a larger decoder is not built for real on the planning CPU
TOKEN_ID = 5  # any id below every vocabulary's size: fake tensors carry no values anyway


@dataclass(frozen=True)
class StepShape:
    """What a step's cost depends on (``RunSpec`` fields); runs that share one are counted once."""

    model: str
    method: str
    method_config: str  # the spec's method_config as sorted JSON
    batch: int
    seq_len: int  # train.max_length: s, the padded source (the worst case of padding="longest")
    target_len: int  # target tokens (seq2seq, decoder); estimated from the label strings
    num_labels: int  # encoder head; 1 = regression
    precision: str
    dropout: float | None = None
    encoder_text: str = "dept"
    encoder_prompt_position: str = "after_cls"

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class StepCost:
    """One training step of a ``StepShape``: bytes, counts and FLOPs."""

    weights_bytes: int  # every parameter and buffer in its dtype (fp32 master weights)
    trainable_params: int
    grad_bytes: int  # the trainable parameters' gradients (fp32)
    optimizer_bytes: int  # AdamW: two fp32 moments per trainable parameter
    saved_bytes: int  # what autograd saves for backward (activations), parameters excluded
    largest_saved: int  # the largest single saved storage
    virtual_tokens: int
    forward_flops: int
    step_flops: int  # forward + backward (the optimiser's elementwise work is not counted)
    exact: bool = True  # False: a decoder's count extrapolated from batches 1 and 2


def count_saved(loss_fn, batch: dict, excluded: set[int]) -> tuple[int, int, int, int]:
    """``(saved_bytes, largest_saved, forward_flops, step_flops)`` of ``loss_fn(batch).backward()``.

    Saved tensors are keyed by their storage (``_cdata``, the storage object's address: one per storage,
    fake or real, kept alive by the hook until backward), so views and repeats count once; storages in
    ``excluded`` (parameters and buffers) are not activations."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in excluded:
            seen[storage._cdata] = storage.nbytes()
        return tensor

    with FlopCounterMode(display=False) as forward:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(batch)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    fwd = forward.get_total_flops()
    return sum(seen.values()), max(seen.values(), default=0), fwd, fwd + backward.get_total_flops()


def storages(modules: list[torch.nn.Module]) -> set[int]:
    """The storage keys of every parameter and buffer of ``modules``."""
    out = set()
    for module in modules:
        out |= {t.untyped_storage()._cdata for t in (*module.parameters(), *module.buffers())}
    return out


def synthetic_batch(family: str, batch: int, seq_len: int, target_len: int, regression: bool = False) -> dict:
    """A batch of the run's shapes, every position real: ``input_ids``/``attention_mask`` ``[B, s]``; labels
    ``[B, T]`` (seq2seq), ``[B]`` (encoder) or ``[B, s]`` with the last ``T`` columns the target (decoder)."""
    ids = torch.full((batch, seq_len), TOKEN_ID, dtype=torch.long)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if family == "seq2seq":
        labels = torch.full((batch, target_len), TOKEN_ID, dtype=torch.long)
    elif family == "encoder":
        labels = torch.zeros(batch) if regression else torch.zeros(batch, dtype=torch.long)
    else:
        labels = torch.full((batch, seq_len), -100, dtype=torch.long)
        labels[:, -target_len:] = TOKEN_ID
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def build_unloaded(shape: StepShape, device: str | None = "meta"):
    """``(backbone, method)`` from the model's config, no weights: on ``device`` (``meta``) or, with None,
    randomly initialised on the CPU. Transfer methods get zero source prompts; the method is not
    initialised (its values do not change a step's shapes). Decoders get a stand-in for the tokenizer's
    pad id, which their forward reads."""
    config = load_config(shape.model)
    set_dropout(config, shape.dropout)
    labels = [str(i) for i in range(shape.num_labels)] if shape.num_labels > 1 else None
    where = torch.device(device) if device else contextlib.nullcontext()
    with where:
        backbone = _build(
            shape.model,
            config,
            labels,
            shape.seq_len,
            weights=False,
            encoder_text=shape.encoder_text,
            encoder_prompt_position=shape.encoder_prompt_position,
        )
        config_obj = build_config(shape.method, flatten_config(json.loads(shape.method_config)))
        d = backbone.dims.hidden_size

        def sources(cfg) -> list[torch.Tensor]:
            field = getattr(get_method_class(shape.method), "source_field", None) or "sources"
            _, names = parse_sources(str(getattr(cfg, field, "") or "random"))
            return [torch.zeros(getattr(cfg, "num_tokens", 10), d) for _ in range(max(len(names), 1))]

        method = attach_method(backbone, shape.method, config_obj, None, sources)
    if backbone.tokenizer is None:
        backbone.tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=0)
    return backbone, method


def _fake(backbone, mode) -> None:
    """Re-wrap every meta parameter and buffer as a CPU fake tensor of ``mode`` (same shapes, dtypes); a
    tensor shared by several modules (tied embeddings) stays one tensor."""
    cpu, done, made, keep = torch.device("cpu"), set(), {}, []  # keep: originals alive, so ids stay unique
    for root in (backbone.model, backbone.method, *backbone.trainable_modules()):
        for module in root.modules():
            if id(module) in done:
                continue
            done.add(id(module))
            for name, p in list(module._parameters.items()):
                if p is not None and (p.device.type == "meta" or id(p) in made):
                    if id(p) not in made:
                        keep.append(p)
                        fake = FakeTensor(mode, p.data, cpu)
                        made[id(p)] = torch.nn.Parameter(fake, requires_grad=p.requires_grad)
                    module._parameters[name] = made[id(p)]
            for name, b in list(module._buffers.items()):
                if b is not None and (b.device.type == "meta" or id(b) in made):
                    if id(b) not in made:
                        keep.append(b)
                        made[id(b)] = FakeTensor(mode, b, cpu)
                    module._buffers[name] = made[id(b)]


def precision_context(precision: str, device_type: str = "cpu"):
    """bf16: autocast to bfloat16 (fp32 master weights), as bench/training/precision.py runs it; fp32 and tf32
    keep fp32 tensors (TF32 changes the matmul unit, not what is stored)."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@lru_cache(maxsize=256)
def predict_step(shape: StepShape) -> StepCost:
    """A step of ``shape`` counted on fake tensors (decoders: a real one-row step, scaled); cached per shape."""
    family = model_family(load_config(shape.model))
    if family == "decoder":
        return _decoder_step(shape)
    backbone, method = build_unloaded(shape, "meta")
    mode = FakeTensorMode(allow_non_fake_inputs=True)  # a tensor attribute outside the modules (MPT)
    _fake(backbone, mode)
    with mode:
        backbone.train(True)
        batch = synthetic_batch(family, shape.batch, shape.seq_len, shape.target_len, shape.num_labels == 1)
        excluded = storages([backbone.model, backbone.method, *backbone.trainable_modules()])
        with precision_context(shape.precision):
            counted = count_saved(backbone.loss, batch, excluded)
    return _cost(backbone, method, counted)


def _decoder_step(shape: StepShape) -> StepCost:
    """Counted on real rows: at batch 1 and 2, extrapolated linearly to ``shape.batch`` (what does not grow
    with the batch, such as autocast's bf16 copies of the weights, is the intercept); exact for batch <= 2."""
    one = StepShape(**{**asdict(shape), "batch": 1})
    size = sum(p.numel() for p in build_unloaded(one, "meta")[0].model.parameters())
    if size > DECODER_REAL_LIMIT:
        raise ValueError(
            f"{shape.model}: a decoder of {size / 1e9:.1f}B parameters is not counted on real rows"
        )
    torch.manual_seed(0)
    backbone, method = build_unloaded(one, None)
    backbone.train(True)
    excluded = storages([backbone.model, backbone.method, *backbone.trainable_modules()])
    counts = []
    for rows in (1, 2) if shape.batch > 1 else (1,):
        batch = synthetic_batch("decoder", rows, shape.seq_len, shape.target_len)
        with precision_context(shape.precision):
            counts.append(count_saved(backbone.loss, batch, excluded))
        backbone.model.zero_grad(set_to_none=True)
        for module in backbone.trainable_modules():
            module.zero_grad(set_to_none=True)
    if len(counts) == 1:
        return _cost(backbone, method, counts[0])
    b = shape.batch
    scaled = tuple(int(one + (two - one) * (b - 1)) for one, two in zip(*counts, strict=True))
    return _cost(backbone, method, scaled, exact=b == 2)


def _cost(backbone, method, counted: tuple[int, int, int, int], exact: bool = True) -> StepCost:
    roots = (backbone.model, backbone.method, *backbone.trainable_modules())
    tensors = {id(t): t for root in roots for t in root.parameters()}
    tensors |= {id(t): t for root in roots for t in root.buffers()}
    weights = sum(t.numel() * t.element_size() for t in tensors.values())
    trainable = sum(p.numel() for p in trainable_parameters(backbone))
    saved, largest, fwd, step = counted
    return StepCost(
        weights_bytes=weights,
        trainable_params=trainable,
        grad_bytes=trainable * 4,
        optimizer_bytes=trainable * 8,
        saved_bytes=saved,
        largest_saved=largest,
        virtual_tokens=method.num_virtual_tokens,
        forward_flops=fwd,
        step_flops=step,
        exact=exact,
    )


def target_tokens(label_strings: list[str] | None) -> int:
    """Target length estimated without a tokenizer: about 3 characters a token, plus EOS (1 for regression
    targets, which are short numbers). Decides only the few target positions of a step."""
    if not label_strings:
        return 4
    return max(math.ceil(len(s) / 3) for s in label_strings) + 1
