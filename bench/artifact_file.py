"""The artifact file's layout, shared by the run that writes it (``bench/run/artifacts.py``, whose docstring
lists the keys) and the planner that reads source prompts from it (``bench/planning/sources.py``): where it
lives under the results folder, its format tag, the exported folder's file names, the exported prompt's key, and reading one.

Imports only ``bench.errors`` from the harness; reading a file needs safetensors and torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as load_bytes

from bench.errors import InputError

FORMAT = "ptbench-artifact-1"
PROMPT_KEY = "prompt"
ARTIFACT_DIR = "artifacts"
# ``bench export --format folder`` (bench/export/folder_format.py): a folder laid out like a results folder
# (``record.json`` + ``artifacts/``) with ``config.json`` saying this format; ``bench eval FOLDER`` reads it.
EXPORT_FORMAT = "ptbench-export-1"
EXPORT_RECORD = "record.json"
EXPORT_CONFIG = "config.json"


def artifact_relpath(run_id: str) -> str:
    """The artifact's path relative to the results folder (what the record's ``artifact`` field holds)."""
    return f"{ARTIFACT_DIR}/{run_id}.safetensors"


def read_artifact(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; ``ValueError`` (one line) if it cannot be read."""
    path = Path(path)
    try:
        tensors = load_bytes(path.read_bytes())
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except FileNotFoundError:
        raise InputError(f"artifact {path} does not exist") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise InputError(f"artifact {path} cannot be read: {str(exc).splitlines()[0]}") from None
    return tensors, metadata


def load_prompt(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    """The exported prompt ``[n, d]`` of an artifact or hand-made prompt file, and the file's metadata."""
    tensors, metadata = read_artifact(path)
    if PROMPT_KEY not in tensors:
        raise InputError(
            f"{path} has no {PROMPT_KEY!r} tensor (only input methods with a static prompt export one)"
        )
    prompt = tensors[PROMPT_KEY]
    if prompt.dim() != 2:
        raise InputError(f"{path}: {PROMPT_KEY!r} has shape {tuple(prompt.shape)}, expected [n, d]")
    return prompt, metadata
