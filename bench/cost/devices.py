"""The devices a plan can target: memory and the sustained FLOP/s a time estimate assumes.

A time estimate without a calibration (``bench/cost/calibrate.py``) is FLOPs / (datasheet peak x
``SUSTAINED``): a stated assumption, labelled "estimate" wherever it is printed. The datasheet peaks are
``bench.perf.memory.GPU_PEAK_TFLOPS`` (dense, no sparsity) plus the consumer cards below.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from bench.errors import InputError
from bench.perf.memory import GPU_PEAK_TFLOPS

# Share of the datasheet peak a T5-Base training step sustains (matmul-bound steps of a few hundred tokens
# reach 30-50% of peak on data-centre GPUs; 40% is the assumption every estimate states).
SUSTAINED = 0.4
# Share of a card's memory a plan may fill: the rest is the CUDA context, the allocator's fragmentation and
# kernels' workspace (torch.cuda.max_memory_allocated, which the prediction is checked against, sees none of it).
USABLE = 0.9
# A CPU has no datasheet row: 0.1 TFLOP/s is an assumption (about 50 GFLOP/s per core for 2 cores); calibrate.
CPU_TFLOPS = 0.1
_CONSUMER = {
    "RTX4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2},
    "RTX3090": {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0},
}


@dataclass(frozen=True)
class DeviceClass:
    """A card (or a CPU) a plan targets: ``memory_bytes`` of it, peak TFLOP/s per precision."""

    name: str
    memory_bytes: int | None  # None: a CPU (host memory; no fit check)
    peak_tflops: dict[str, float | None]
    visible: bool = False  # the device this process sees (a calibration can exist for it)

    def sustained_flops(self, precision: str) -> float | None:
        """FLOP/s an estimate assumes: peak in ``precision`` x SUSTAINED (fp32 where the card lacks it)."""
        if self.memory_bytes is None:
            return CPU_TFLOPS * 1e12
        peak = self.peak_tflops.get(precision) or self.peak_tflops.get("fp32")
        return None if peak is None else peak * 1e12 * SUSTAINED

    def budget(self, memory_gb: float | None = None) -> int | None:
        """Bytes a run may allocate: ``memory_gb`` (the user's) or the card's, times USABLE."""
        total = memory_gb * 1e9 if memory_gb is not None else self.memory_bytes
        return None if total is None else int(total * USABLE)


# name -> (table row, memory in GB)
CARDS: dict[str, tuple[str, float]] = {
    "h200": ("H200", 141),
    "h100": ("H100", 80),
    "a100-80gb": ("A100", 80),
    "a100-40gb": ("A100", 40),
    "l4": ("L4", 24),
    "a10": ("A10", 24),
    "rtx4090": ("RTX4090", 24),
    "rtx3090": ("RTX3090", 24),
    "v100-32gb": ("V100", 32),
    "v100-16gb": ("V100", 16),
    "t4": ("T4", 16),
}


def card(name: str) -> DeviceClass:
    """A named card (``--gpu``): one of CARDS, or ``cpu``; a bad name is a one-line error listing them."""
    key = name.lower().replace(" ", "")
    if key == "cpu":
        return DeviceClass("cpu", None, {})
    if key not in CARDS:
        raise InputError(f"--gpu {name!r} is not a known card; choose from {', '.join(CARDS)}, cpu")
    row, gb = CARDS[key]
    peaks = {**GPU_PEAK_TFLOPS, **_CONSUMER}[row]
    return DeviceClass(key, int(gb * 1e9), peaks)


def present() -> DeviceClass:
    """The device this process would train on: the visible CUDA card (its name and memory) or the CPU."""
    if not torch.cuda.is_available():
        return DeviceClass(device_name(), None, {}, visible=True)
    name = torch.cuda.get_device_name(0)
    peaks = next(
        (p for key, p in {**GPU_PEAK_TFLOPS, **_CONSUMER}.items() if key in name.replace(" ", "")), {}
    )
    return DeviceClass(name, torch.cuda.get_device_properties(0).total_memory, peaks, visible=True)


def device_name() -> str:
    """The present device's name, as calibrations are keyed: the CUDA card's, else ``cpu:<model>x<cores>``."""

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu:{model}x{os.cpu_count()}"
