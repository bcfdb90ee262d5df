"""methods/routing.py: the router load counts each chosen expert once per row."""

import pytest
import torch

from methods.routing import RouterLoad


def test_router_load_shares_top1_and_topk():
    load = RouterLoad(3)
    load.add(torch.tensor([0, 0, 2, 0]))
    assert load.summary() == {"experts": 3, "rows": 4, "share": [0.75, 0.0, 0.25]}
    load.add(torch.tensor([[1, 2], [1, 0]]))
    summary = load.summary()
    assert summary["rows"] == 6
    assert summary["share"] == [round(4 / 8, 6), round(2 / 8, 6), round(2 / 8, 6)]
    assert "counts" not in dict(load.state_dict())
    load.reset()
    assert load.summary()["share"] == [0.0, 0.0, 0.0]


def test_router_load_rejects_no_experts():
    with pytest.raises(ValueError, match="num_experts"):
        RouterLoad(0)
