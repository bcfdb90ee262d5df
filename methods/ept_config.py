"""EPT's config: the placeholder-v0 design's fields and the label a run is reported under.

The fields are documented in ``methods/ept.py``. Reports show an EPT run as ``ept[<variant>]`` (never a bare
``ept``, which would read as the paper's method; see ``docs/methods/ept.md#deviations-from-the-official-code``)
and add ``*`` when the run's design fields (``fusion``, ``proj``, ``gate``, ``reconstruct``) differ from the
named variant's defaults, so a changed design is never reported under the variant's own name. The DePT-level
fields (m, r, learning rates), which presets set per task, do not change the label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from methods.base import BackboneDims
from methods.dept import DePTConfig


@dataclass
class FusionConfig:
    """(a) Prompt fusion by attention: queries from ``P_s``, keys/values from the low-rank knowledge."""

    kv_source: Literal["B", "AB", "none"] = "B"  # "none" disables fusion (P_f = P_s)
    attn_dim: int = 32  # d_a
    heads: int = 1  # attn_dim and d must be divisible by heads
    value_proj: Literal["identity", "linear"] = "identity"  # linear: W_v ∈ ℝ^{d×d_a}, W_o ∈ ℝ^{d_a×d} (zeros)
    residual: bool = True  # P_f = P_s + attn (true) or attn (false)
    scale_init: float | None = None  # learnable scalar on the attention output, e.g. 0.0 or 1.0; None = off


@dataclass
class ProjectionConfig:
    """(b) Multi-space projection: ``N`` subspaces combined by the gate."""

    num_spaces: int = 4  # N; 0 disables projection (P_ms = 0)
    kind: Literal["bottleneck", "full", "orthogonal"] = "bottleneck"
    rank: int = 8  # k (bottleneck and orthogonal)
    input: Literal["fused", "short"] = "fused"  # project P_f or P_s


@dataclass
class GateConfig:
    """The gating network over the subspaces."""

    input: Literal["prompt_mean", "input_mean", "per_token"] = "prompt_mean"
    activation: Literal["softmax", "sigmoid"] = "softmax"
    temperature: float = 1.0


@dataclass
class EPTConfig(DePTConfig):
    fusion: FusionConfig = field(default_factory=FusionConfig)
    proj: ProjectionConfig = field(default_factory=ProjectionConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    reconstruct: Literal["fused+proj", "short+proj", "proj", "short+fused+proj"] = "fused+proj"
    lr_modules: float = 1e-3
    ept_variant: str = "placeholder-v0"

    def validate(self, dims: BackboneDims) -> None:
        super().validate(dims)
        f, p, g = self.fusion, self.proj, self.gate
        if f.attn_dim < 1 or f.heads < 1 or f.attn_dim % f.heads:
            raise ValueError(
                f"fusion.attn_dim={f.attn_dim} must be >= 1 and divisible by fusion.heads={f.heads}"
            )
        if f.value_proj == "identity" and dims.hidden_size % f.heads:
            raise ValueError(f"fusion.heads={f.heads} must divide the hidden size {dims.hidden_size}")
        if not 0 <= p.num_spaces <= 64:
            raise ValueError(f"proj.num_spaces={p.num_spaces} must be between 0 and 64")
        if not 1 <= p.rank <= dims.hidden_size:
            raise ValueError(f"proj.rank={p.rank} must be between 1 and the hidden size {dims.hidden_size}")
        if g.temperature <= 0:
            raise ValueError(f"gate.temperature={g.temperature} must be > 0")
        if self.lr_modules <= 0:
            raise ValueError(f"lr_modules={self.lr_modules} must be > 0")
        if f.value_proj == "linear" and f.scale_init == 0:
            raise ValueError(
                "fusion.scale_init=0 with fusion.value_proj='linear': the scale and W_o (zero-initialised) "
                "would both stay at zero, each blocking the other's gradient; use a non-zero scale_init or none"
            )
        if self.reconstruct == "proj" and p.num_spaces == 0:
            raise ValueError("reconstruct='proj' needs proj.num_spaces >= 1 (the prompt would be all zeros)")
        if f.kv_source != "none" and p.input == "short" and self.reconstruct in ("proj", "short+proj"):
            raise ValueError(
                f"fusion.kv_source={f.kv_source!r} is unused with proj.input='short' and "
                f"reconstruct={self.reconstruct!r} (it would never learn); set fusion.kv_source=none"
            )
        if not self.ept_variant:
            raise ValueError("ept_variant must be a non-empty name")


DESIGN_FIELDS = ("fusion", "proj", "gate", "reconstruct")
# Known variants: name -> the design they stand for (only the harness's placeholder so far).
VARIANTS: dict[str, EPTConfig] = {"placeholder-v0": EPTConfig()}


def ept_display_name(config: EPTConfig) -> str:
    """``ept[placeholder-v0]``; ``ept[placeholder-v0*]`` when a design field differs from the variant's
    defaults; ``ept[<name>]`` for a variant name the harness does not know (the user's own design)."""
    reference = VARIANTS.get(config.ept_variant)
    if reference is None:
        return f"ept[{config.ept_variant}]"
    ours, theirs = asdict(config), asdict(reference)
    changed = any(ours[f] != theirs[f] for f in DESIGN_FIELDS)
    return f"ept[{config.ept_variant}{'*' if changed else ''}]"
