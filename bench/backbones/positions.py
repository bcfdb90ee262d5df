"""Position helpers of decoder-only backbones, shared by the forward (``decoder.py``) and label scoring
(``decoder_scoring.py``): real tokens counted from 0 whatever the padding side, and rows left-aligned."""

from __future__ import annotations

import torch


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids ``[B, L]`` counting real tokens only: 0 at the first real token, pads clamped to 0."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_align(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real entries to the front (stable): returns the gathered values and the index used.

    ``values`` is ``[B, L]`` or ``[B, L, d]``; ``mask`` ``[B, L]`` marks real entries. Gathering with the
    returned index ``[B, L]`` again on the aligned tensor's inverse restores the original layout.
    """
    order = torch.argsort((~mask.bool()).int(), dim=1, stable=True)  # real positions first, in order
    index = order if values.dim() == 2 else order.unsqueeze(-1).expand(-1, -1, values.shape[-1])
    return values.gather(1, index), order
