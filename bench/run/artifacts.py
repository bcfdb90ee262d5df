"""Saved artifacts: what a run trained, at its best checkpoint, as one safetensors file per run.

``<results>/artifacts/<run_id>.safetensors`` holds (keys):

==================  ======================================================================================
key                 content
==================  ======================================================================================
``method.<name>``   the method's :meth:`Method.saved_state` (docs/records.md#parameter-counts ``saved_params``)
``head.<i>``        the encoder task head's parameters, in ``Backbone.head_parameters()`` order (none on T5)
``model.<name>``    "wrap" methods only: trainable backbone parameters (as the trainer's checkpoint)
``prompt``          input methods with a static prompt only: the exported prompt ``[n, d]`` the method
                    prepends (``Method.prompt`` returning 2-D, i.e. shared over the batch); this is what a
                    later run loads as a *source prompt* (SPoT, ATTEMPT, MPT)
==================  ======================================================================================

The file's metadata (strings) says ``format`` (``ptbench-artifact-1``), ``run_id``, ``method``, ``task``,
``suite``, ``model``, ``seed``. Files are written atomically (temporary file, fsync, rename), before the record.
A source-prompt file made by hand needs only the ``prompt`` tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save as save_bytes

from bench.artifact_file import FORMAT, PROMPT_KEY, read_artifact
from bench.atomic import atomic_open
from bench.errors import InputError
from bench.spec import RunSpec
from bench.training.trainer import trainable_parameters

if TYPE_CHECKING:
    from bench.backbones.base import Backbone


def static_prompt(backbone: Backbone) -> torch.Tensor | None:
    """The method's prompt ``[n, d]`` if it is the same for every input (2-D from ``Method.prompt``), else None."""
    method = backbone.method
    if method is None or method.attach != "input":
        return None
    dims = method.dims
    device = next((p.device for p in method.parameters()), torch.device("cpu"))
    embeds = torch.zeros(1, dims.max_length, dims.hidden_size, device=device)
    mask = torch.ones(1, dims.max_length, dtype=torch.long, device=device)
    with torch.no_grad():
        prompt = method.prompt(embeds, mask)
    return None if prompt is None or prompt.dim() != 2 else prompt.detach()


def artifact_tensors(backbone: Backbone) -> dict[str, torch.Tensor]:
    """Every tensor of the artifact (see the module docstring), on CPU, contiguous and unshared."""
    method = backbone.method
    tensors = {f"method.{k}": v for k, v in method.saved_state().items()}
    for i, p in enumerate(backbone.head_parameters()):
        tensors[f"head.{i}"] = p
    if method.attach == "wrap":
        trainable = {id(p) for p in trainable_parameters(backbone)}
        head = {id(p) for p in backbone.head_parameters()}
        for name, p in backbone.model.named_parameters():
            if id(p) in trainable and id(p) not in head:
                tensors[f"model.{name}"] = p
    prompt = static_prompt(backbone)
    if prompt is not None:
        tensors[PROMPT_KEY] = prompt
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_artifact(path: Path, backbone: Backbone, spec: RunSpec) -> int:
    """Write the artifact atomically; return its size in bytes (the record's ``artifact_bytes``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT,
        "run_id": spec.run_id,
        "method": spec.method,
        "task": spec.task,
        "suite": spec.suite,
        "model": spec.model,
        "seed": str(spec.seed),
    }
    data = save_bytes(artifact_tensors(backbone), metadata=metadata)
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return path.stat().st_size


def load_artifact(path: Path, backbone: Backbone) -> dict[str, str]:
    """Restore a run's trained state into ``backbone`` (method attached); return the file's metadata.

    Strict: a missing or unexpected tensor is a ``ValueError``; after it the backbone predicts as the run did
    at its best checkpoint.
    """
    tensors, metadata = read_artifact(path)
    method_state = {k[len("method.") :]: v for k, v in tensors.items() if k.startswith("method.")}
    try:
        backbone.method.load_saved_state(method_state)
    except (RuntimeError, KeyError) as exc:
        raise InputError(f"artifact {path}: method state does not fit: {str(exc).splitlines()[0]}") from None
    head = backbone.head_parameters()
    head_keys = sorted((k for k in tensors if k.startswith("head.")), key=lambda k: int(k.split(".")[1]))
    if len(head_keys) != len(head):
        raise InputError(f"artifact {path}: {len(head_keys)} head tensors, the backbone has {len(head)}")
    params = dict(backbone.model.named_parameters())
    with torch.no_grad():
        for key, p in zip(head_keys, head, strict=True):
            if tensors[key].shape != p.shape:
                raise InputError(
                    f"artifact {path}: {key} has shape {tuple(tensors[key].shape)}, not {tuple(p.shape)}"
                )
            p.copy_(tensors[key])
        for key, value in tensors.items():
            if key.startswith("model."):
                name = key[len("model.") :]
                if name not in params:
                    raise InputError(f"artifact {path}: unknown backbone parameter {name!r}")
                params[name].copy_(value)
    return metadata
