"""Measurement that wraps the training loop from outside, the same for every method (docs/records.md#how-it-is-measured).

* Time: ``perf_counter`` around each optimiser step, CUDA-synchronised at the boundaries only; evaluation is
  timed separately and never counted as training time. Median ms/step after warm-up steps.
* GPU memory: peak stats reset *after* the model is loaded and moved; the post-load baseline is kept so the
  record has absolute peaks and peaks over the baseline, allocated and reserved.
* CPU memory: the process's lifetime peak RSS (each run is its own process) and a low-rate sampling thread for
  the peak during training.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil
import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StepTimes:
    """Per-step wall times in seconds; the first ``warmup`` are excluded from the statistics."""

    warmup: int
    seconds: list[float] = field(default_factory=list)

    def add(self, dt: float) -> None:
        self.seconds.append(dt)

    @property
    def measured(self) -> list[float]:
        rest = self.seconds[self.warmup :]
        return rest if rest else self.seconds

    def median_ms(self) -> float | None:
        return statistics.median(self.measured) * 1000 if self.seconds else None

    def p90_ms(self) -> float | None:
        if not self.seconds:
            return None
        data = sorted(self.measured)
        return data[min(len(data) - 1, int(round(0.9 * (len(data) - 1))))] * 1000


class RssSampler:
    """Samples this process's RSS in a daemon thread (default every 0.2 s) and keeps the peak.

    ``on_sample`` runs in the same thread at each sample (the trainer samples the load average there,
    ``bench.measurement.contention.ContentionMeter.sample_load``), so no second thread wakes up."""

    def __init__(self, interval_s: float = 0.2, on_sample: Callable[[], None] | None = None) -> None:
        self.interval_s = interval_s
        self.on_sample = on_sample
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self.on_sample is not None:
                self.on_sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def peak_rss_bytes() -> int:
    """Lifetime peak RSS of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class GpuMemory:
    """Peak CUDA memory relative to a baseline taken after model load; all None on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline_allocated: int | None = None
        self.baseline_reserved: int | None = None

    def reset(self) -> None:
        if self.device.type != "cuda":
            return
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline_allocated = torch.cuda.memory_allocated(self.device)
        self.baseline_reserved = torch.cuda.memory_reserved(self.device)

    def peaks(self) -> dict[str, int | None]:
        if self.device.type != "cuda":
            keys = ("allocated", "reserved", "allocated_over_baseline", "reserved_over_baseline")
            return {f"peak_gpu_mem_{k}_bytes": None for k in keys}
        allocated = torch.cuda.max_memory_allocated(self.device)
        reserved = torch.cuda.max_memory_reserved(self.device)
        return {
            "peak_gpu_mem_allocated_bytes": allocated,
            "peak_gpu_mem_reserved_bytes": reserved,
            "peak_gpu_mem_allocated_over_baseline_bytes": allocated - (self.baseline_allocated or 0),
            "peak_gpu_mem_reserved_over_baseline_bytes": reserved - (self.baseline_reserved or 0),
        }


def _cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _package_version(name: str) -> str | None:

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> dict[str, str | bool | None]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        )
        return {"commit": commit or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def parameter_dtypes(modules: list[torch.nn.Module]) -> dict[str, int]:
    """``{dtype name: parameter count}`` over ``modules`` (each tensor once), largest share first.

    transformers 5.x loads a checkpoint in its stored dtype unless told otherwise; ptbench loads in float32
    (``bench/backbones/load.py``) and the record states what the parameters actually were
    (docs/protocol.md#precision), not a constant.
    """
    seen: set[int] = set()
    counts: dict[str, int] = {}
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                name = str(p.dtype).removeprefix("torch.")
                counts[name] = counts.get(name, 0) + p.numel()
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def environment(device: torch.device, modules: list[torch.nn.Module] | None = None) -> dict:
    """Provenance of software and hardware (docs/records.md#provenance); with ``modules`` (the backbone model first, then
    the method), ``dtype`` is the dtype of most of the first module's parameters and ``param_dtypes`` the
    count per dtype over all of them."""
    packages = ["torch", "transformers", "peft", "datasets", "tokenizers", "numpy", "scikit-learn", "ptbench"]
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        # Which CPU and which of torch's kernels (AVX2, AVX512, ...): the same run on another CPU can sum in
        # another order, and a prompt at a high rate turns that into other predictions.
        "cpu_model": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": psutil.cpu_count(logical=True),
        "host_memory_bytes": psutil.virtual_memory().total,
        "torch_threads": torch.get_num_threads(),
        "packages": {p: _package_version(p) for p in packages},
        "git": git_commit(),
        "device": str(device),
        "device_name": platform.processor() or "cpu",
        "dtype": None,
        "cuda": torch.version.cuda,
    }
    if modules:
        main = parameter_dtypes(modules[:1])
        env["dtype"] = next(iter(main), None)
        env["param_dtypes"] = parameter_dtypes(modules)
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cudnn"] = torch.backends.cudnn.version()
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        env["gpu_count"] = torch.cuda.device_count()
        env["gpu_total_memory_bytes"] = torch.cuda.get_device_properties(device).total_memory
    return env


class Stopwatch:
    """Accumulates wall time of a phase (e.g. evaluation), synchronising the device at its boundaries."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.total = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        sync(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.total += time.perf_counter() - self._start


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch CUDA: CPU workers
        return []
