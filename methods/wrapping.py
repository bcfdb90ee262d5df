"""Shared machinery of ``attach = "wrap"`` methods (LoRA, BitFit, Adapter, full fine-tuning).

A wrap method changes the backbone model once (:meth:`WrapMethod.wrap`, called by the backbone after it froze
every parameter and made its task head trainable). Its trainable tensors then live *inside the model*, not in
the method module, so:

* :meth:`WrapMethod.param_groups` lists the tensors that became trainable in :meth:`WrapMethod.modify` (the
  difference of the model's ``requires_grad`` sets before and after), never the task head, which the backbone
  owns and counts as ``head_params`` (docs/records.md#parameter-counts). Tensors that were trainable before the wrap (the head)
  are made trainable again afterwards, since PEFT's injection freezes everything but its adapters.
* The method module itself registers no parameters, so ``Backbone.total_params`` (model + method, deduplicated)
  never counts a tensor twice.
* :meth:`WrapMethod.saved_state` returns those tensors by their name in the model; loading copies them back.

Everything works on the meta device (``bench params``): new tensors are created on the device of the weights
they sit next to.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.registry import did_you_mean
from methods.base import Method, ParamCounts, ParamGroup


class WrapMethod(Method):
    """Base class: subclasses implement :meth:`modify` (change the model, mark the new tensors trainable)."""

    attach = "wrap"

    def __init__(self, config, dims) -> None:
        super().__init__(config, dims)
        self.__dict__["_model"] = None  # plain attribute: the model is not a submodule of the method
        self._trainable_names: list[str] = []

    def modify(self, model: nn.Module) -> nn.Module:
        """Change ``model`` in place (or return a new one) and set ``requires_grad`` on what trains."""
        raise NotImplementedError

    def wrap(self, model: nn.Module) -> nn.Module:
        before = {id(p) for p in model.parameters() if p.requires_grad}
        keep = [p for p in model.parameters() if p.requires_grad]
        model = self.modify(model)
        for p in keep:  # the backbone's task head stays trainable (PEFT freezes it)
            p.requires_grad_(True)
        self.__dict__["_model"] = model
        self._trainable_names = [
            n for n, p in model.named_parameters() if p.requires_grad and id(p) not in before
        ]
        if not self._trainable_names:
            raise ValueError(f"method {self.name!r} made no parameter of the model trainable")
        return model

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            raise RuntimeError(f"method {self.name!r} is not attached to a model yet")
        return self._model

    def trainable_tensors(self) -> dict[str, nn.Parameter]:
        """The method's trainable tensors by their name in the model (after :meth:`wrap`)."""
        params = dict(self.model.named_parameters())
        return {n: params[n] for n in self._trainable_names}

    def param_groups(self) -> list[ParamGroup]:
        if self._model is None:
            return [ParamGroup("method", [], self.config.lr, self.config.weight_decay)]
        params = list(self.trainable_tensors().values())
        return [ParamGroup("method", params, self.config.lr, self.config.weight_decay)]

    def counts(self) -> ParamCounts:
        n = sum(p.numel() for p in self.trainable_tensors().values())
        return ParamCounts(trainable_params=n, saved_params=n)

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.trainable_tensors().items()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        tensors = self.trainable_tensors()
        missing = sorted(set(tensors) - set(state))
        unexpected = sorted(set(state) - set(tensors))
        if missing or unexpected:
            raise KeyError(f"saved state does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
        with torch.no_grad():
            for n, p in tensors.items():
                p.copy_(state[n])

    def record(self) -> dict:
        return {"trainable_tensors": len(self._trainable_names)}


def parse_names(text: str, allowed: list[str], field: str) -> list[str]:
    """``"q,v"`` -> ``["q", "v"]``, each checked against ``allowed`` (one-line error with did-you-mean)."""

    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"{field}={text!r} is empty; allowed: {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"{field}={text!r}: {name!r} is not allowed{did_you_mean(name, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    return names
