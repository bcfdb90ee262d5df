"""Peak of live activation tensors over a fake-tensor training step, against ``bench/cost``'s peak model.

``bench/cost`` predicts a step's activation peak as the bytes autograd saves plus twice the largest saved
tensor. This script counts what that model approximates: every storage an operator creates (parameters and
buffers excluded), alive from the op until its last tensor is collected, over one forward and backward on fake
tensors at the given shape. Where the two agree, a measured peak far above both (CPU RSS) is the allocator's
retention and the kernels' scratch, not activations the prediction misses (docs/gpu.md#checking-the-predictions).

    python -m scripts.live_peak --model minilm --methods pt,lora,prefix,dept --batch 4 --seq 32
"""

from __future__ import annotations

import argparse
import json
import weakref
from dataclasses import asdict

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench.backbones.models import load_config, model_family
from bench.cost.step import StepShape, _fake, build_unloaded, predict_step, storages, synthetic_batch
from methods.registry import build_config


class LivePeak(TorchDispatchMode):
    """The running sum of live operator outputs' storages (counted once per storage) and its maximum."""

    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded, self.count, self.size, self.refs = excluded, {}, {}, {}
        self.now = self.peak = 0

    def _gone(self, key: int, ref: weakref.ref) -> None:
        self.refs.pop(id(ref), None)
        self.count[key] -= 1
        if self.count[key] == 0:
            del self.count[key]
            self.now -= self.size.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self.excluded:
                continue
            if key not in self.count:
                self.count[key], self.size[key] = 0, storage.nbytes()
                self.now += storage.nbytes()
                self.peak = max(self.peak, self.now)
            self.count[key] += 1
            ref = weakref.ref(t, lambda r, k=key: self._gone(k, r))
            self.refs[id(ref)] = ref  # keep the weakref (and its callback) alive
        return out


def live_peak(shape: StepShape) -> int:
    """Bytes: the live-activation peak of one fake training step of ``shape`` (encoder and seq2seq models)."""
    family = model_family(load_config(shape.model))
    backbone, _ = build_unloaded(shape, "meta")
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    _fake(backbone, mode)
    with mode:
        backbone.train(True)
        batch = synthetic_batch(family, shape.batch, shape.seq_len, shape.target_len)
        excluded = storages([backbone.model, backbone.method, *backbone.trainable_modules()])
        with LivePeak(excluded) as tracker:
            backbone.loss(batch).backward()
    return tracker.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--methods", default="pt,dept,ept,lpt,lora,prefix")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=32)
    args = parser.parse_args()
    print("| method | live peak MiB | predicted (saved + 2 x largest) MiB | ratio |")
    print("|---|---:|---:|---:|")
    for method in args.methods.split(","):
        config = json.dumps(asdict(build_config(method, {})), sort_keys=True)
        shape = StepShape(args.model, method, config, args.batch, args.seq, 2, 2, "fp32")
        cost = predict_step(shape)
        predicted = cost.saved_bytes + 2 * cost.largest_saved + cost.grad_bytes + cost.optimizer_bytes
        live = live_peak(shape) + cost.optimizer_bytes  # gradients are operator outputs, counted in the peak
        print(f"| {method} | {live / 2**20:.1f} | {predicted / 2**20:.1f} | {live / predicted:.2f} |")


if __name__ == "__main__":
    main()
