"""A second device on a CPU-only machine, for device-placement tests (``tests/test_device_placement.py``).

A tensor "on the device" is an :class:`OnDevice`: a wrapper that reports ``device("meta")`` and holds a real CPU
tensor, so every op computes real values (``.item()``, boolean masks, ``nonzero`` and generation all work, and
the numbers are the CPU run's bit for bit) while the device rule of a GPU is enforced: an op that meets both an
``OnDevice`` tensor and a plain CPU tensor of one or more dimensions raises :class:`DeviceMismatch`, as CUDA
raises "Expected all tensors to be on the same device". What CUDA accepts is accepted: CPU 0-dim tensors as
scalars, CPU index tensors in indexing, copies between the devices (``.to``, ``copy_``).

``with on_sim_device(backbone):`` moves the model and the attached method as ``Backbone.to`` would (parameters
and buffers only, parameters keep their identity, so tied weights stay tied) and activates the modes that turn
``torch.zeros(n, device=x.device)``, ``torch.tensor(data, device=x.device)`` and ``t.to(x.device)`` into
``OnDevice`` tensors; a tensor made without ``device=`` stays a plain CPU tensor, as it would on a GPU run.

The ``meta`` device is only the label: it needs no GPU, no accelerator code path of PyTorch or transformers
starts for it, and a real meta tensor (data-less) reaching an op is reported rather than computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

DEVICE = torch.device("meta")
CPU = torch.device("cpu")
aten = torch.ops.aten

# Ops that CUDA runs with arguments on both devices: copies between devices.
CROSS_DEVICE = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default, aten.copy.default}
# Indexing ops whose index tensors CUDA accepts on the CPU (argument position of the indices).
CPU_INDICES = {
    aten.index.Tensor: 1,
    aten.index_put.default: 1,
    aten.index_put_.default: 1,
    aten._index_put_impl_.default: 1,
}


class DeviceMismatch(RuntimeError):
    """A plain CPU tensor met a tensor on the simulated device: a CUDA run would fail here."""


class OnDevice(torch.Tensor):
    """A real CPU tensor (``elem``) that says it lives on :data:`DEVICE`."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor, requires_grad: bool = False):
        out = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.shape,
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=DEVICE,
            requires_grad=requires_grad,
        )
        out.elem = elem
        return out

    def __repr__(self) -> str:
        return f"OnDevice({self.elem!r})"

    # Python numbers are read in C++ without dispatching: copy the values out, as CUDA does.
    def tolist(self):
        return self.elem.tolist()

    def item(self):
        return self.elem.item()

    def __int__(self):
        return int(self.elem)

    def __float__(self):
        return float(self.elem)

    def __bool__(self):
        return bool(self.elem)

    def __index__(self):
        return self.elem.__index__()

    def __tensor_flatten__(self):
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):
        return OnDevice(inner["elem"])

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _dispatch(func, args, kwargs or {})


def _is_device(device) -> bool:
    return device is not None and torch.device(device).type == DEVICE.type


def _describe(t: torch.Tensor) -> str:
    return f"{'device' if isinstance(t, OnDevice) else t.device.type} {tuple(t.shape)} {t.dtype}"


def _check(func, args, kwargs) -> bool:
    """Raise :class:`DeviceMismatch` where CUDA would; return whether any argument is on the device."""
    for t in torch.utils._pytree.tree_leaves((args, kwargs)):
        if isinstance(t, torch.Tensor) and not isinstance(t, OnDevice) and t.device.type == "meta":
            raise DeviceMismatch(f"{func}: a data-less meta tensor {_describe(t)} reached an op")
    exempt = CPU_INDICES.get(func)
    checked = [a for i, a in enumerate(args) if i != exempt]
    tensors = [t for t in torch.utils._pytree.tree_leaves((checked, kwargs)) if isinstance(t, torch.Tensor)]
    on_device = [t for t in tensors if isinstance(t, OnDevice)]
    if on_device or _is_device(kwargs.get("device")):
        if func not in CROSS_DEVICE:
            stray = [t for t in tensors if not isinstance(t, OnDevice) and t.dim() > 0]
            if stray:
                raise DeviceMismatch(
                    f"{func}: tensors on two devices: {', '.join(_describe(t) for t in tensors)} "
                    "(a tensor was created without the model's device)"
                )
        return True
    return any(isinstance(a, OnDevice) for a in torch.utils._pytree.tree_leaves(args))


def _dispatch(func, args, kwargs):
    on_device = _check(func, args, kwargs)
    target = kwargs.get("device")
    if _is_device(target):
        kwargs = {**kwargs, "device": CPU}
    unwrap = lambda t: t.elem if isinstance(t, OnDevice) else t  # noqa: E731
    out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
    # An in-place op returns its first argument, already the right kind of tensor.
    if func._schema.is_mutable and isinstance(args[0], OnDevice) and out is args[0].elem:
        return args[0]
    leaves_to_device = on_device and not (target is not None and not _is_device(target))
    if not leaves_to_device:
        return out
    return tree_map(lambda t: OnDevice(t) if isinstance(t, torch.Tensor) else t, out)


class _FactoryMode(TorchDispatchMode):
    """Factory ops (``torch.zeros(..., device=DEVICE)``) have no tensor argument to dispatch on: catch them."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(isinstance(a, OnDevice) for a in torch.utils._pytree.tree_leaves((args, kwargs))):
            return _dispatch(func, args, kwargs)
        if _is_device(kwargs.get("device")):
            return _dispatch(func, args, kwargs)
        _check(func, args, kwargs)
        return func(*args, **kwargs)


class _TensorDataMode(TorchFunctionMode):
    """``torch.tensor(data, device=DEVICE)`` copies its data to the device below the dispatcher: build it on the
    CPU and wrap it instead."""

    FUNCS = (torch.tensor, torch.as_tensor, torch.asarray)
    INDEXING = (torch.Tensor.__getitem__, torch.Tensor.__setitem__)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FUNCS and _is_device(kwargs.get("device")):
            return OnDevice(func(*args, **{**kwargs, "device": CPU}))
        if func in self.INDEXING and isinstance(args[0], OnDevice):
            # ``x[[0, 2]]``: the list becomes an index tensor on x's device below the dispatcher (data-less
            # here); CUDA takes the same index as a CPU tensor.
            args = (args[0], _list_index(args[1]), *args[2:])
        return func(*args, **kwargs)


def _list_index(index):
    if isinstance(index, list):
        return torch.tensor(index)
    if isinstance(index, tuple):
        return tuple(_list_index(i) for i in index)
    return index


def to_device(module: torch.nn.Module) -> None:
    """``module.to(device)``: every parameter and buffer becomes an :class:`OnDevice` (parameters in place)."""

    def move(t: torch.Tensor) -> torch.Tensor:
        return t if isinstance(t, OnDevice) else OnDevice(t.detach())

    module._apply(move)


@contextmanager
def sim_modes() -> Iterator[None]:
    """The modes alone: factory calls with ``device=`` the simulated device make :class:`OnDevice` tensors."""
    with _TensorDataMode(), _FactoryMode():
        yield


@contextmanager
def on_sim_device(backbone) -> Iterator[None]:
    """Put ``backbone`` (its model and attached method) on the simulated device and run the body there."""
    for module in backbone.trainable_modules():
        to_device(module)
    # transformers re-"kernelizes" a model loaded with the ``kernels`` package at every ``train()`` for its
    # device type, and the ``kernels`` package knows no ``meta``: the simulated run keeps the CPU's kernels.
    models = [
        m for module in backbone.trainable_modules() for m in module.modules() if hasattr(m, "_use_kernels")
    ]
    kept = [m.__dict__.pop("_use_kernels") for m in models]
    try:
        with sim_modes():
            yield
    finally:
        for m, value in zip(models, kept, strict=True):
            m.__dict__["_use_kernels"] = value


def to_sim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch moved to the device, as the trainer moves it (``v.to(device)``)."""
    return {k: OnDevice(v.clone()) for k, v in batch.items()}
