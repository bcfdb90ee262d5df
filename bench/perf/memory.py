"""What ``bench perf`` measures besides time: the memory peak over a baseline, and FLOPs per step."""

from __future__ import annotations

# Dense peak TFLOP/s of common GPUs per precision (vendor datasheets, SXM parts where there are several, no
# sparsity): fp32 on the CUDA cores (an fp32 run has TF32 off, bench/training/precision.py), tf32 and bf16 on the tensor
# cores. None: the GPU has no such mode (V100 and T4 predate TF32 and bf16).
GPU_PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    "H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0},
    "V100": {"fp32": 15.7, "tf32": None, "bf16": None},
    "T4": {"fp32": 8.1, "tf32": None, "bf16": None},
}


def device_peak_tflops(device, precision: str = "fp32") -> float | None:
    """The GPU's datasheet peak in ``precision`` (what ran, not what was asked for) by name, or None (CPUs,
    unknown GPUs)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peaks = next((peaks for key, peaks in GPU_PEAK_TFLOPS.items() if key in name), {})
    return peaks.get(precision)


def step_flops(loss_fn, batch: dict, params: list) -> int:
    """Floating-point operations of one forward + backward, counted by ``torch.utils.flop_counter`` (matmuls and
    attention; the optimiser's elementwise work is not counted). Run once after timing; gradients dropped."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_fn(batch).backward()
    for p in params:
        p.grad = None
    return counter.get_total_flops()


class PeakMemory:
    """Peak memory over the baseline at construction: CUDA allocated, or process RSS sampled every 10 ms."""

    def __init__(self, device) -> None:
        import psutil
        import torch

        self.device, self.torch = device, torch
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
        else:
            from bench.measurement.measure import RssSampler

            self.base = psutil.Process().memory_info().rss
            self.sampler = RssSampler(interval_s=0.01).__enter__()

    def peak_over_baseline(self) -> int:
        if self.device.type == "cuda":
            return self.torch.cuda.max_memory_allocated(self.device) - self.base
        self.sampler.__exit__()
        return self.sampler.peak - self.base
