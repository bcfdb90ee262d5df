"""The one interface every method implements.

A method never knows which task, suite or storage it runs with (CONTRIBUTING.md#how-the-parts-fit-together). It sees a backbone only
through :class:`BackboneDims` (shapes, known without weights, so parameter counts can be computed on the meta
device) and, for data-dependent initialisation, through :class:`EmbeddingSource`.

Where a method attaches (``attach``) decides which hooks the backbone calls:

* ``"input"``: the prompt family (PT, DePT, EPT, ADePT, ULPT, DPT, Residual PT, SPoT, ATTEMPT, MPT, XPrompt,
  P-tuning).
  The backbone embeds the padded input ``E(x) ∈ ℝ^{B×s×d}``, calls :meth:`Method.update_embeds` (DePT's
  additive offset; identity for most) and :meth:`Method.prompt` (the ``n×d`` or ``B×n×d`` virtual tokens),
  and places the prompt where its family wants it (T5: in front; BERT: after ``[CLS]``).
  An input method may also rewrite the states of its virtual positions at the input of chosen layers
  (:meth:`Method.prompt_layers`, :meth:`Method.rewrite_prompt`: MEPT); the backbone runs the rewrite as a
  forward pre-hook of each of those layers.
* ``"layer"``: methods that insert at an intermediate layer (LPT). The backbone runs layers ``1..L_p``
  without gradient, calls :meth:`Method.layer_prompt` on the hidden states and runs the rest on
  ``[P(x) ; h]``.
* ``"wrap"``: methods that change the backbone itself (LoRA through PEFT, BitFit, Adapter, prefix tuning, full
  fine-tuning). The backbone calls :meth:`Method.wrap` once on its model; the method's trainable parameters
  then live in the model. Wrap methods subclass ``methods.wrapping.WrapMethod`` and implement ``modify``.

Every method also names its parameter groups with their own learning rates (DePT trains the prompt and the
low-rank pair at different rates), so the trainer never special-cases a method.

Source prompts (SPoT, ATTEMPT, MPT). A method with ``requires_sources = True`` names the config field that lists
its sources in ``source_field`` (SPoT: ``"source"``, one item, ``--set spot.source=mnli``; ATTEMPT/MPT:
``"sources"``, comma-separated, ``--set attempt.sources=mnli,sst2``) and the method whose runs provide source
prompts in ``source_method`` (``"pt"``). Each item is a task name or a path to a ``.safetensors`` prompt file;
``random`` and ``none`` mean "no source prompts". The harness (``bench/planning/sources.py``), not the method, turns the
items into tensors: a task name becomes the exported prompt of an ``ok`` run of ``source_method`` on that task
(trained first if missing), and the resolved run ids enter the run's spec and hash. The method then receives
the prompts, in the order listed, through :meth:`Method.load_sources` before :meth:`Method.initialize` (an empty
list for ``random``/``none``); :meth:`Method.check_sources` lets it refuse a list at planning time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from bench.errors import InputError
from methods.counters import counter_states, load_counter_states
from methods.search_space import default_space

Attach = Literal["input", "layer", "wrap"]


@dataclass
class MethodConfig:
    """Optimiser settings shared by every method; subclasses add the method's own fields.

    Defaults are the paper's (docs/methods/index.md); a preset or ``--set method.field=value`` overrides them.
    """

    lr: float = 0.3
    weight_decay: float = 1e-5
    optimizer: str = "adamw"  # "adamw" | "adafactor"
    adam_eps: float = 1e-8

    def validate(self, dims: BackboneDims) -> None:
        """Raise ``ValueError`` (one line, naming the field, the value and what is allowed) on a bad value."""
        if self.lr <= 0:
            raise InputError(f"lr={self.lr} must be > 0")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.optimizer not in ("adamw", "adafactor"):
            raise InputError(f"optimizer={self.optimizer!r} is not one of 'adamw', 'adafactor'")


@dataclass(frozen=True)
class BackboneDims:
    """What a method may know of a backbone: shapes only, available without loading weights."""

    family: str  # "seq2seq" | "encoder" | "decoder"
    hidden_size: int  # d
    num_layers: int  # layers of the stack the prompt enters (T5: encoder blocks)
    max_length: int  # s: padded source length of the run
    vocab_size: int
    max_positions: int | None = None  # learned absolute positions (BERT: 512); None if relative (T5)


def check_prompt_fits(num_tokens: int, dims: BackboneDims) -> None:
    """Raise if ``num_tokens`` virtual tokens plus the padded input exceed the backbone's learned positions."""
    if dims.max_positions is not None and num_tokens + dims.max_length > dims.max_positions:
        raise InputError(
            f"num_tokens={num_tokens} + max_length={dims.max_length} exceeds the backbone's "
            f"{dims.max_positions} positions"
        )


@dataclass
class PromptConfig(MethodConfig):
    """The prompt methods' shared field and its checks: ``num_tokens`` (l) virtual tokens, at least one, and
    (for a prompt prepended to the input) l + s within the backbone's learned positions. Subclasses set their
    own default for ``num_tokens`` and validate only their own fields (after ``super().validate``)."""

    num_tokens: int = 100  # l
    # The l tokens are prepended to the input sequence (False for prefix tuning's per-layer keys/values).
    prompt_on_input: ClassVar[bool] = True

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        if self.num_tokens < 1:
            raise InputError(f"num_tokens={self.num_tokens} must be >= 1")
        if self.prompt_on_input:
            check_prompt_fits(self.num_tokens, dims)


class EmbeddingSource(Protocol):
    """Access to the frozen word embeddings, for inits such as DePT's text init or vocabulary sampling."""

    def embed_text(self, text: str, length: int, special_tokens: bool = False) -> torch.Tensor:
        """Embeddings ``[length, d]`` of the text's token ids (with the tokenizer's special tokens, e.g. T5's
        ``</s>``, when ``special_tokens``), repeated or cut to ``length`` rows."""

    def embed_random_vocab(
        self, length: int, generator: torch.Generator, max_id: int | None = None
    ) -> torch.Tensor:
        """Embeddings ``[length, d]`` of ``length`` token ids sampled below ``max_id`` (None: whole vocabulary)."""


@dataclass
class ParamGroup:
    """One optimiser parameter group with its own learning rate."""

    name: str
    params: list[nn.Parameter]
    lr: float
    weight_decay: float = 0.0


@dataclass
class ParamCounts:
    """The separate counting columns of docs/records.md#parameter-counts."""

    trainable_params: int
    saved_params: int
    extra_params: int = 0
    transfer_params: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingStage:
    """One training stage: its own optimiser, schedule (warm-up, then linear decay) and ``max_steps``."""

    name: str
    max_steps: int


@dataclass
class StageContext:
    """What a method gets between two training stages (XPrompt: importance scores for pruning).

    ``batches`` is an endless stream of training batches already on the run's device; ``loss`` is the
    backbone's training loss of one batch (differentiable with respect to the method's parameters). The trainer
    calls the hook with the backbone in evaluation mode (no dropout) and restores training mode afterwards.
    """

    batches: Iterator[dict[str, torch.Tensor]]
    loss: Callable[[dict[str, torch.Tensor]], torch.Tensor]


class Method(nn.Module):
    """Base class: a trainable module plus the hooks its ``attach`` kind needs."""

    name: ClassVar[str]
    paper: ClassVar[str]  # citation, one line
    attach: ClassVar[Attach]
    formula: ClassVar[str]  # trainable-parameter formula, one line, for `bench list methods`
    config_class: ClassVar[type[MethodConfig]]
    requires_sources: ClassVar[bool] = False  # SPoT/ATTEMPT/MPT: needs prompts trained on source tasks
    source_field: ClassVar[str | None] = None  # config field listing the sources ("source" / "sources")
    source_method: ClassVar[str] = "pt"  # the method whose runs' exported prompts are the source prompts
    max_sources: ClassVar[int | None] = None  # at most this many source prompts (SPoT: 1); None: any number
    # Keys of ``record()`` that the run's record also keeps at initialisation and at the best step, as
    # ``<key>_init`` and ``<key>_best`` (EPT: its gate weights), so a report can show how they moved.
    record_init_and_best: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MethodConfig, dims: BackboneDims) -> None:
        super().__init__()
        config.validate(dims)
        self.config = config
        self.dims = dims

    # ---- initialisation -------------------------------------------------------------------------------
    def initialize(self, embeddings: EmbeddingSource, generator: torch.Generator) -> None:
        """Data-dependent initialisation after the backbone is loaded (no-op by default)."""

    def load_sources(self, prompts: list[torch.Tensor]) -> None:
        """Receive source prompts ``[l_i, d]`` (trained by the harness on source tasks), before ``initialize``.

        The harness resolves the config's source names to saved prompts (a method never knows where results
        are stored) and calls this only for methods with ``requires_sources``.
        """
        raise NotImplementedError(f"method {self.name!r} takes no source prompts")

    @classmethod
    def peft_equivalent(cls, config: MethodConfig, model: nn.Module, task_type: Any) -> Any | None:
        """The Hugging Face PEFT config of the same method on ``model`` (a ``peft.PeftConfig``), or None where
        PEFT has no such method. ``bench perf`` times it against this implementation (its ``peft`` variant)."""
        return None

    @classmethod
    def peft_inputs(cls, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Extra keyword inputs the PEFT twin's forward needs besides ids, mask and labels (none by default)."""
        return {}

    @classmethod
    def check_sources(cls, names: list[str]) -> None:
        """Raise ``ValueError`` (one line) if the config's source items are not acceptable; ``names`` is the
        list of items with ``random``/``none`` removed. Called at planning time, before anything trains."""
        if cls.max_sources is not None and len(names) > cls.max_sources:
            raise InputError(
                f"{cls.name}.{cls.source_field}={','.join(names)!r}: {cls.name} takes at most "
                f"{cls.max_sources} source prompt(s)"
            )

    # ---- "input" hooks ---------------------------------------------------------------------------------
    @property
    def num_virtual_tokens(self) -> int:
        """Virtual tokens the method adds to the processed sequence (for throughput accounting)."""
        return 0

    @property
    def pad_positions_matter(self) -> bool:
        """Whether outputs on real tokens depend on how many pad positions follow them.

        False for every method whose pad positions are masked out (the rule): the harness may then cut each
        batch to its longest row (``train.padding="longest"``) with identical results on the real tokens.
        True (ATTEMPT with ``summary_over="all"``, whose max-pool reads the pads) keeps every batch ``s`` wide.
        """
        return False

    def prompt(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """Virtual tokens ``[n, d]`` (shared over the batch) or ``[B, n, d]`` (instance-dependent)."""
        return None

    def update_embeds(self, token_embeds: torch.Tensor) -> torch.Tensor:
        """Change the frozen token embeddings ``[B, s, d]`` before the prompt is placed (DePT)."""
        return token_embeds

    # ---- "layer" hooks ---------------------------------------------------------------------------------
    insert_layer: int | None = None

    def layer_prompt(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Virtual tokens ``[B, n, d]`` built from the hidden states after layer ``insert_layer``."""
        raise NotImplementedError(f"method {self.name!r} does not attach at a layer")

    # ---- per-layer rewrite of the virtual positions (MEPT) ---------------------------------------------
    def prompt_layers(self, num_layers: int) -> list[int]:
        """The prompted stack's layers (of ``num_layers``) at whose input :meth:`rewrite_prompt` rewrites the
        states of the virtual positions placed by :meth:`prompt`; none by default."""
        return []

    def rewrite_prompt(
        self, layer: int, hidden: torch.Tensor, slots: torch.Tensor, readable: torch.Tensor
    ) -> torch.Tensor:
        """New states ``[B, n, d]`` of the ``n`` virtual positions at the input of ``layer``.

        ``hidden`` ``[B, L, d]`` is the layer's input, ``slots`` ``[B, n]`` the columns of the virtual positions,
        ``readable`` ``[B, L]`` (0/1) the text columns the method may read (decoder: the prefix, never targets).
        """
        raise NotImplementedError(f"method {self.name!r} does not rewrite prompts at layers")

    # ---- "wrap" hooks ----------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """Return the backbone model changed by the method (called once, after freezing)."""
        return model

    # ---- training --------------------------------------------------------------------------------------
    def param_groups(self) -> list[ParamGroup]:
        """Parameter groups with their learning rates; default: all own parameters at ``config.lr``."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [ParamGroup("method", params, self.config.lr, self.config.weight_decay)]

    def training_stages(self, max_steps: int) -> list[TrainingStage]:
        """The training stages of one run; default: a single stage of ``max_steps`` (every one-stage method).

        Multi-stage methods (XPrompt: tune, prune, retrain) return several; the trainer runs them in order,
        calls :meth:`begin_stage` before every stage after the first and rebuilds the optimiser and schedule
        from :meth:`param_groups`, because the trainable set may have changed. Dev evaluation and best-checkpoint
        selection run in the final stage only.
        """
        return [TrainingStage("train", max_steps)]

    def begin_stage(self, index: int, context: StageContext) -> None:
        """Prepare stage ``index`` (>= 1) after stage ``index - 1`` ended (XPrompt prunes and rewinds here)."""

    def counts(self) -> ParamCounts:
        """Parameter counts for the record; default: everything trainable is also saved."""
        n = sum(p.numel() for g in self.param_groups() for p in g.params)
        return ParamCounts(trainable_params=n, saved_params=n)

    def stage_trainable_params(self) -> int:
        """Parameters the optimiser updates in the current stage (the per-stage record of multi-stage methods);
        default: ``counts().trainable_params``. XPrompt: the surviving entries after pruning."""
        return self.counts().trainable_params

    # ---- saving -----------------------------------------------------------------------------------------
    def saved_state(self) -> dict[str, torch.Tensor]:
        """What must be saved to reproduce inference (docs/records.md#parameter-counts ``saved_params``); default: the state dict.

        Methods whose inference needs less than training override it (Residual PT stores the computed prompt
        ``P'`` without its MLP; XPrompt only the surviving entries and the masks).
        """
        return {k: v.detach() for k, v in self.state_dict().items()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`saved_state`: after it, the method predicts exactly as when it was saved."""
        self.load_state_dict(state)

    @classmethod
    def display_name_for(cls, config: MethodConfig) -> str:
        """The name reports show for a run with ``config`` (the worker writes it into the record as
        ``method_record.display_name``, so ``bench report`` never imports training code); default: ``name``.
        EPT: its variant, ``ept[placeholder-v0]`` (``*`` added when the design differs from the variant's)."""
        return cls.name

    def display_name(self) -> str:
        """:meth:`display_name_for` of this method's config."""
        return self.display_name_for(self.config)

    def record(self) -> dict:
        """Extra method-specific facts for the run record (variant names, gate weights, ...)."""
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        """Non-parameter state training checkpoints carry: every training counter's (methods/counters.py)."""
        return counter_states(self)

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`checkpoint_state`, when a run resumes from its checkpoint."""
        load_counter_states(self, state)

    # ---- tuning -----------------------------------------------------------------------------------------
    @classmethod
    def search_space(cls) -> dict:
        """What ``bench tune`` varies: config paths (or ``train.*``) -> distributions (methods/search_space.py).

        Default: every learning rate of the config (``lr``, ``lr_*``; one per parameter group) log-uniform over
        ×[0.1, 10] of its untuned value. Methods override it with the grids their papers searched.
        """
        return default_space(cls.config_class)
