"""What ``bench perf`` measures besides time: the memory peak over a baseline, and FLOPs per step."""

from __future__ import annotations

# Dense peak TFLOP/s of common GPUs for fp32 matmuls through TF32 tensor cores / bf16 (vendor datasheets, SXM
# parts, no sparsity). Achieved TFLOP/s are printed against the fp32/TF32 figure, the precision of these runs.
GPU_PEAK_TFLOPS = {
    "H100": 494.7,
    "H200": 494.7,
    "A100": 156.0,
    "L4": 60.0,
    "A10": 62.5,
    "V100": 15.7,
    "T4": 8.1,
}


def device_peak_tflops(device) -> float | None:
    """The GPU's datasheet peak (TF32) by name, or None (CPUs, unknown GPUs)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)


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
            from bench.measure import RssSampler

            self.base = psutil.Process().memory_info().rss
            self.sampler = RssSampler(interval_s=0.01).__enter__()

    def peak_over_baseline(self) -> int:
        if self.device.type == "cuda":
            return self.torch.cuda.max_memory_allocated(self.device) - self.base
        self.sampler.__exit__()
        return self.sampler.peak - self.base
