"""The label strings of a task as one batch of extra positions, scored in a single pass (docs/decoder.md#label-scoring).

Rank classification scores label ``k`` by ``sum_j log p(y_kj | prefix, y_k<j)`` (EOS included). Instead of one
forward per label, every label's fed tokens become extra positions after the row's prefix, and an attention
mask lets each position see the prefix and its own label's earlier positions only. Causal attention never lets
a position see anything else, so each position's hidden state is the one the label's own forward computes:
the prefix runs once, and its keys and values are shared by every label without being copied per label.

With ``share=True`` labels that start with the same tokens (STS-B's "2.0" … "2.8" share "2", ".") share those
positions: every distinct token prefix is one *node*, fed once, and the mask follows the tree (a node sees its
ancestors). Node positions then are not contiguous per label, so the backbone must give each node its position
from ``depth`` (RoPE takes explicit position ids); T5's relative bias comes from column distances, so the
seq2seq backbone uses ``share=False`` (one contiguous block per label, column distance = depth distance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelTree:
    """Nodes in feeding order (every node after its parent).

    ``tokens`` ``[C]`` the token each node feeds; ``depth`` ``[C]`` its index in its label's fed sequence;
    ``visible`` ``[C, C]`` (bool) node ``q`` may attend node ``c`` (``c`` is ``q`` or an ancestor);
    ``nodes[k][m]`` the node of label ``k``'s first ``m + 1`` fed tokens; ``origin[c]`` one ``(k, m)`` that
    feeds node ``c``.
    """

    tokens: torch.Tensor
    depth: torch.Tensor
    visible: torch.Tensor
    nodes: list[list[int]]
    origin: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.origin)

    def attention_rule(self, offset: int) -> Callable:
        """An ``and_mask_function`` for transformers' mask builders over ``offset`` prefix columns + the nodes.

        Every query may see the prefix columns (the causal and padding rules still apply); a node sees only
        the nodes ``visible`` allows. Index-based, as ``transformers.masking_utils`` requires.
        """
        c = len(self)
        full = torch.ones(offset + c, offset + c, dtype=torch.bool, device=self.visible.device)
        full[offset:, offset:] = self.visible

        def rule(batch_idx, head_idx, q_idx, kv_idx):
            return full[q_idx, kv_idx]

        return rule


def label_tree(sequences: list[list[int]], share: bool = True, device=None) -> LabelTree:
    """The tree (``share``) or the chain of blocks of the labels' fed token ``sequences`` (each non-empty)."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    depth: list[int] = []
    parent: list[int] = []
    origin: list[tuple[int, int]] = []
    nodes: list[list[int]] = []
    for k, seq in enumerate(sequences):
        path: list[int] = []
        for m, token in enumerate(seq):
            key = (k, *seq[: m + 1]) if not share else tuple(seq[: m + 1])
            if key not in index:
                index[key] = len(tokens)
                tokens.append(token)
                depth.append(m)
                parent.append(path[-1] if path else -1)
                origin.append((k, m))
            path.append(index[key])
        nodes.append(path)
    visible = torch.eye(len(tokens), dtype=torch.bool)
    for node, up in enumerate(parent):  # a parent precedes its child, so its row is complete
        if up >= 0:
            visible[node] |= visible[up]
    return LabelTree(
        torch.tensor(tokens, dtype=torch.long, device=device),
        torch.tensor(depth, dtype=torch.long, device=device),
        visible.to(device),
        nodes,
        origin,
    )


def summed_logprobs(
    states: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    predictor: list[list[int]],
    targets: list[list[int]],
    budget: int = 2**25,
) -> torch.Tensor:
    """``[R, K]``: for each label ``k``, the sum over ``j`` of ``log_softmax(head(states[:, predictor[k][j]]))``
    at token ``targets[k][j]``.

    ``states`` ``[R, S, d]``. The head (a large vocabulary ``V``) runs on chunks of states whose ``[R, chunk, V]``
    logits stay under ``budget`` elements, in float32 as the per-label scoring did.
    """
    rows, count = states.shape[0], states.shape[1]
    pairs = [
        (k, p, t)
        for k, (ps, ts) in enumerate(zip(predictor, targets, strict=True))
        for p, t in zip(ps, ts, strict=True)
    ]
    label = torch.tensor([k for k, _, _ in pairs], device=states.device)
    state = torch.tensor([p for _, p, _ in pairs], device=states.device)
    token = torch.tensor([t for _, _, t in pairs], device=states.device)
    picked = torch.zeros(rows, len(pairs), device=states.device)
    vocab = None
    start = 0
    while start < count:
        step = 1 if vocab is None else max(1, budget // max(1, rows * vocab))
        stop = min(count, start + step)
        chosen = ((state >= start) & (state < stop)).nonzero(as_tuple=True)[0]
        if vocab is None or chosen.numel():
            logp = head(states[:, start:stop]).float().log_softmax(-1)  # [R, chunk, V]
            vocab = logp.shape[-1]
            picked[:, chosen] = logp[:, state[chosen] - start, token[chosen]]
        start = stop
    scores = torch.zeros(rows, len(predictor), device=states.device)
    return scores.index_add_(1, label, picked)
