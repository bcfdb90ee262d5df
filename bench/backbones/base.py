"""The backbone interface: one class per model family, the method attached through its hooks.

A backbone owns the frozen HF model and its tokenizer, turns :class:`suites.Example` lists into tensors, and
implements the family-specific parts of the forward pass: where a prompt is placed, how the loss is computed,
how predictions become strings for the task's metric. It knows nothing about which method or task it runs;
methods see it only through :class:`methods.BackboneDims` and the :class:`methods.EmbeddingSource` calls below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch
from torch import nn

from bench.errors import InputError
from methods.base import BackboneDims, Method


@dataclass
class EncodedSplit:
    """A task split as tensors: ``input_ids``/``attention_mask`` [N, s], ``labels`` ([N, T] or [N])."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    references: list[str]  # gold target strings, for the metric
    labels_follow_inputs: bool = False  # decoder: labels are [N, s], column-aligned with the inputs
    # [N, s]: BERT segment ids (encoder_text="segments"), else None
    token_type_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, index: torch.Tensor | slice, trim: bool = False) -> dict[str, torch.Tensor]:
        """Rows ``index``; with ``trim`` (dynamic padding) cut to the batch's last column holding a real token.

        Rows are padded on the right at encoding, so trimming drops only pad columns: ``[b, s]`` becomes
        ``[b, L]`` with ``L`` the longest row of this batch, and every real token keeps its column.
        """
        ids, mask, labels = self.input_ids[index], self.attention_mask[index], self.labels[index]
        types = self.token_type_ids[index] if self.token_type_ids is not None else None
        if trim and mask.numel():
            length = int(mask.any(0).nonzero().max()) + 1 if bool(mask.any()) else 1
            ids, mask = ids[:, :length], mask[:, :length]
            types = types[:, :length] if types is not None else None
            if self.labels_follow_inputs:
                labels = labels[:, :length]
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        return batch if types is None else {**batch, "token_type_ids": types}


def dims_from_config(family: str, config, max_length: int) -> BackboneDims:
    """A backbone's shapes from its Hugging Face config alone: what ``Backbone.dims`` reports and what the
    ``--dry-run`` checks and ``bench params`` read without loading weights."""
    if family == "seq2seq":  # T5: the encoder stack the prompt enters; relative positions
        return BackboneDims(family, config.d_model, config.num_layers, max_length, config.vocab_size, None)
    return BackboneDims(
        family,
        config.hidden_size,
        config.num_hidden_layers,
        max_length,
        config.vocab_size,
        getattr(config, "max_position_embeddings", None),
    )


class Backbone(ABC):
    """A frozen model of one family with a method attached."""

    family: ClassVar[str]
    # Greedy generation stops after this many new tokens (seq2seq, decoder); an instance may lower it (``bench
    # perf`` caps it at the longest label, the work a trained model does before its EOS).
    max_new_tokens: int = 20

    def __init__(self, model: nn.Module, tokenizer, name: str, max_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.method: Method | None = None
        self.dropout: dict[str, float | None] = {}  # the dropout config fields it runs with (load_backbone)
        for p in self.model.parameters():
            p.requires_grad_(False)

    def trims_batches(self, padding: str) -> bool:
        """Dynamic padding: ``padding="longest"`` unless the attached method's outputs read pad positions."""
        return padding == "longest" and not (self.method is not None and self.method.pad_positions_matter)

    def tokenize_sources(self, examples: list) -> dict[str, torch.Tensor]:
        """Source texts as ``input_ids``/``attention_mask`` ``[n, s]``, truncated and padded to s."""
        return self.tokenizer(
            [e.source for e in examples],
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        )

    # ---- what methods may know ------------------------------------------------------------------------
    @property
    def dims(self) -> BackboneDims:
        """The shapes a method may know, from the model's config (``dims_from_config``)."""
        return dims_from_config(self.family, self.model.config, self.max_length)

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def embed_text(self, text: str, length: int, special_tokens: bool = False) -> torch.Tensor:
        """``[length, d]``: the text's ids (with the tokenizer's special tokens, e.g. T5's ``</s>``, when
        ``special_tokens``, as DePT and PEFT's TEXT init tokenise it), repeated or cut to ``length`` rows."""
        ids = self.tokenizer(text, add_special_tokens=special_tokens)["input_ids"]
        if not ids:
            raise InputError(f"prompt init text {text!r} has no tokens")
        ids = (ids * (length // len(ids) + 1))[:length]
        weight = self.model.get_input_embeddings().weight  # ids on its device: a backbone already moved works
        return self.embed_ids(torch.tensor(ids, device=weight.device)).detach().clone()

    def embed_random_vocab(
        self, length: int, generator: torch.Generator, max_id: int | None = None
    ) -> torch.Tensor:
        """``[length, d]``: embeddings of ids drawn uniformly below ``max_id`` (None: the whole vocabulary)."""
        weight = self.model.get_input_embeddings().weight
        vocab = weight.shape[0]
        # Drawn on the CPU (the generator's device: the same ids on any device), then moved to the weights'.
        ids = torch.randint(0, min(vocab, max_id or vocab), (length,), generator=generator)
        return self.embed_ids(ids.to(weight.device)).detach().clone()

    # ---- attaching a method ---------------------------------------------------------------------------
    def attach(self, method: Method) -> None:
        """Attach ``method``: wrap methods change the model; input/layer methods are called in forward."""
        self.method = method
        if method.attach == "wrap":
            self.model = method.wrap(self.model)
        elif method.attach == "layer":
            self._check_layer_support()
        layers = method.prompt_layers(self.dims.num_layers) if method.attach == "input" else []
        if layers:
            stack = self.prompt_stack()
            for index in layers:
                stack[index].register_forward_pre_hook(partial(self._rewrite_prompt, index), with_kwargs=True)

    def prompt_stack(self) -> nn.ModuleList:
        """The layers the prompt passes through (T5: encoder blocks; BERT: encoder layers; Llama: decoder layers)."""
        raise InputError(f"backbone family {self.family!r} cannot rewrite prompts at layers")

    def set_prompt_slots(self, slots: torch.Tensor, readable: torch.Tensor) -> None:
        """Where the next forward's virtual positions are: ``slots`` ``[B, n]`` columns and ``readable`` ``[B, L]``
        (0/1) the text columns a per-layer rewrite may read (MEPT's router); the family sets both where it places
        the prompt. Columns past ``L`` (label scoring's nodes) are not readable."""
        self._prompt_slots = (slots, readable)

    def _rewrite_prompt(self, index: int, module: nn.Module, args: tuple, kwargs: dict):
        """Forward pre-hook of layer ``index``: the method's new states replace the virtual positions' inputs.

        A forward shorter than the prompt plus one column (a cached decoding step of one new token) holds no
        virtual position and runs unchanged."""
        hidden = args[0] if args else kwargs["hidden_states"]  # [B, L, d]
        slots, readable = self._prompt_slots
        length = hidden.shape[1]
        if length <= int(slots.max()) + 1:
            return None
        if hidden.shape[0] != slots.shape[0]:
            raise RuntimeError(f"layer {index}: {hidden.shape[0]} rows but prompt slots for {slots.shape[0]}")
        readable = readable[:, :length]
        if readable.shape[1] < length:
            readable = torch.cat(
                [readable, readable.new_zeros(readable.shape[0], length - readable.shape[1])], 1
            )
        states = self.method.rewrite_prompt(index, hidden, slots, readable).to(hidden.dtype)  # [B, n, d]
        hidden = hidden.scatter(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]), states)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    def _check_layer_support(self) -> None:
        """Raise ``ValueError`` if this backbone cannot run the attached layer method (override to allow)."""
        raise InputError(f"backbone family {self.family!r} does not support methods that attach at a layer")

    @property
    def layer_method(self) -> Method | None:
        """The attached method if it attaches at a layer (LPT), else None."""
        if self.method is not None and self.method.attach == "layer":
            return self.method
        return None

    def insert_layer_prompt(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, position: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Generic half of the layer path: ask the method for ``P(x)`` and splice it into the sequence.

        ``hidden`` ``[B, s, d]`` is the (gradient-free) output of layer ``insert_layer``; the prompt
        ``[B, l, d]`` goes in at ``position`` (T5: 0, in front; BERT: 1, after ``[CLS]``) and the mask gets
        ``1_l`` there. Returns the ``[B, l+s, d]`` states, the ``[B, l+s]`` mask and ``l``.
        """
        prompt = self.method.layer_prompt(hidden, attention_mask).to(hidden.dtype)  # [B, l, d]
        n = prompt.shape[1]
        hidden = torch.cat([hidden[:, :position], prompt, hidden[:, position:]], dim=1)
        ones = attention_mask.new_ones(attention_mask.shape[0], n)
        mask = torch.cat([attention_mask[:, :position], ones, attention_mask[:, position:]], dim=1)
        return hidden, mask, n

    def _layer_count_check(self, num_layers: int) -> None:
        lp = self.method.insert_layer
        if lp is None or not 1 <= lp < num_layers:
            raise InputError(f"insert_layer={lp} must be between 1 and {num_layers - 1} for {self.name!r}")

    def head_parameters(self) -> list[nn.Parameter]:
        """Trainable task-head parameters (encoder classifiers); empty for text-to-text backbones."""
        return []

    def trainable_modules(self) -> list[nn.Module]:
        return [m for m in (self.model, self.method) if m is not None]

    def train(self, mode: bool = True) -> None:
        for module in self.trainable_modules():
            module.train(mode)

    def to(self, device: torch.device) -> None:
        for module in self.trainable_modules():
            module.to(device)

    # ---- data -----------------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, examples: list, label_strings: list[str]) -> EncodedSplit:
        """Tokenize a split: sources padded to exactly ``max_length`` (docs/protocol.md#padding)."""

    # ---- forward --------------------------------------------------------------------------------------
    def prompted_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Token embeddings after the method's update, the prompt (``[B, n, d]`` or None), and the mask."""
        embeds = self.embed_ids(input_ids)  # E(x): [B, s, d]
        if self.method is None or self.method.attach != "input":
            return embeds, None, attention_mask
        prompt = self.method.prompt(embeds, attention_mask)  # [n, d] or [B, n, d]
        embeds = self.method.update_embeds(embeds)
        if prompt is not None:
            prompt = prompt.to(embeds.dtype)
            if prompt.dim() == 2:
                prompt = prompt.unsqueeze(0).expand(embeds.shape[0], -1, -1)
        return embeds, prompt, attention_mask

    def count_tokens(self, batch: dict[str, torch.Tensor]) -> tuple[int, int]:
        """Real tokens (non-pad source + target) and processed positions (padded) of a batch (§8.3)."""
        mask, labels = batch["attention_mask"], batch["labels"]
        targets = int((labels != -100).sum()) if labels.dim() == 2 else 0
        positions = mask.numel() + (labels.numel() if labels.dim() == 2 else 0)
        return int(mask.sum()) + targets, positions

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abstractmethod
    def predict(
        self, batch: dict[str, torch.Tensor], mode: str = "generate", label_strings: list[str] | None = None
    ) -> list[str]:
        """Predicted target strings for a batch (for the task's metric); ``mode`` is generate or score."""

    def total_params(self) -> int:
        seen, total = set(), 0
        for module in self.trainable_modules():
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total
