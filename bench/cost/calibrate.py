"""A few timed steps at a run's shapes on the present device, cached per device, model, method, shape and
precision: what ``bench run --calibrate`` measures and every later plan on the same device reads.

The model is built from its config with random weights (timing does not depend on the values), the step is
the training loop's (forward under the run's precision, backward, clipping, AdamW), and the evaluation cost
is one no-grad forward of an ``eval_batch_size`` batch per row. Cache: ``$PTBENCH_CACHE_DIR/calibration.json``
(default ``~/.cache/ptbench``), one entry per ``<device name>|<StepShape JSON>``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

from bench.atomic import atomic_open
from bench.backbones.models import load_config, model_family
from bench.cost.devices import device_name
from bench.cost.step import StepShape, build_unloaded, precision_context, synthetic_batch
from bench.training.optim import trainable_parameters


def cache_path() -> Path:
    root = os.environ.get("PTBENCH_CACHE_DIR") or Path.home() / ".cache" / "ptbench"
    return Path(root) / "calibration.json"


def _read() -> dict:
    path = cache_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def cached(shape: StepShape, device: str | None = None) -> dict | None:
    """The cached calibration of ``shape`` on ``device`` (default: the present one), or None."""
    return _read().get(f"{device or device_name()}|{shape.key()}")


def calibrate(shape: StepShape, steps: int = 3, warmup: int = 1, eval_batch: int = 64) -> dict:
    """Time ``steps`` training steps (after ``warmup``) of ``shape`` and one evaluation forward on the
    present device; cache and return ``{"ms_per_step", "eval_ms_per_row", "steps", "device"}``."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    backbone, _ = build_unloaded(shape, None)
    backbone.to(device)
    backbone.train(True)
    family = model_family(load_config(shape.model))
    regression = shape.num_labels == 1

    def batch_of(n: int) -> dict:
        made = synthetic_batch(family, n, shape.seq_len, shape.target_len, regression)
        return {k: v.to(device) for k, v in made.items()}

    times = timed_steps(backbone, batch_of(shape.batch), warmup + steps, shape.precision, device)[warmup:]
    backbone.train(False)
    evaluation = batch_of(eval_batch)
    with torch.inference_mode(), precision_context(shape.precision, device.type):
        backbone.loss(evaluation)  # warm-up
        _sync(device)
        start = time.perf_counter()
        backbone.loss(evaluation)
        _sync(device)
    entry = {
        "ms_per_step": statistics.median(times) * 1e3,
        "eval_ms_per_row": (time.perf_counter() - start) * 1e3 / eval_batch,
        "steps": steps,
        "device": device_name(),
    }
    data = _read()
    data[f"{device_name()}|{shape.key()}"] = entry
    with atomic_open(cache_path()) as handle:
        handle.write(json.dumps(data, indent=1, sort_keys=True))
    return entry


def timed_steps(backbone, batch: dict, steps: int, precision: str, device: torch.device) -> list[float]:
    """Seconds of each of ``steps`` training steps of ``backbone`` on ``batch``, as the training loop takes
    them (forward under ``precision``, backward, clipping at 1.0, AdamW); a fresh optimiser, freed after."""
    params = trainable_parameters(backbone)
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        with precision_context(precision, device.type):
            loss = backbone.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
