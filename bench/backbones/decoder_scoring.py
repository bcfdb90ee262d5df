"""Label scoring on decoder-only LMs: the prefix once, every label's tokens in the same pass (docs/decoder.md#label-scoring).

Rank classification: label ``k``'s score is the summed log-probability of its target tokens ``" " + label``
and EOS (``DecoderBackbone._target_ids``) after the row's ``[source ; cue]`` prefix, with the method's prompt
in place. :func:`label_scores` computes exactly what :func:`reference_scores` (the former one-forward-per-label
loop, kept as the oracle of ``tests/test_scoring.py`` and the baseline of ``bench perf --eval``) computes:

* one row ``[pads ; P ; prefix ; nodes]`` per example, where the nodes are the labels' fed tokens (every target
  token but the final EOS) as a tree (``bench/backbones/label_tree.py``): labels sharing leading tokens share
  those nodes; the first target token is predicted by the prefix's last state;
* the causal mask narrowed by the tree: a node sees the prefix and its own ancestors only, so its hidden
  state is the one its label's own row computes; position ids are the ones that row has (``n + len + depth``);
* the embeddings of each node come from the method's hooks run on that label's own row (``_inputs``, as the
  per-label loop ran them): DePT's position-wise offsets and an input prompt built from the prefix alone are
  those of the per-label rows; the prefix's are the first label's (every hook acts on each position alone);
* LPT: the lower layers on ``[prefix ; nodes]`` with the same tree mask, the prompt from the prefix's states,
  inserted before the first real token, then the upper layers; prefix tuning's key/value prefixes enter in
  attention (``methods/prefix.py``), unchanged by the mask.

Cost: one forward of ``n + W + C`` positions (``C`` nodes, 39 for STS-B's 26 labels with SmolLM2's digit
tokens) instead of ``K`` forwards of ``n + W + T``. Models without a Llama-style stack, and methods whose
outputs read pad positions (``pad_positions_matter``: the per-label rows' pads differ), use the loop.
"""

from __future__ import annotations

import torch

from bench.backbones.label_tree import LabelTree, label_tree, summed_logprobs
from bench.backbones.positions import left_align, positions_from_mask


def label_scores(backbone, batch: dict[str, torch.Tensor], label_strings: list[str]) -> torch.Tensor:
    """``[R, K]`` summed target log-probabilities of every label for every row of ``batch``."""
    inner, head = backbone._decoder_and_head()
    stack = all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb"))
    if not stack or (backbone.method is not None and backbone.method.pad_positions_matter):
        return reference_scores(backbone, batch, label_strings)
    targets = [backbone._target_ids(text) for text in label_strings]  # each ends with EOS
    ids, mask = backbone._prefixes(batch)  # [R, W], left-padded: every prefix ends at column W - 1
    tree = label_tree([t[:-1] for t in targets], device=ids.device)
    if backbone.layer_method is not None:
        hidden, n = _late_hidden(backbone, inner, ids, mask, tree)
    else:
        x, full_mask, n = _embeddings(backbone, ids, mask, targets, tree)
        positions = _positions(full_mask, mask, tree, n)
        rule = tree.attention_rule(n + ids.shape[1])
        hidden = inner.norm(backbone._run_layers(inner.layers, x, full_mask, positions, rule))
    # State 0 (the prefix's last) predicts each label's first token, state 1 + c node c's next one.
    states = hidden[:, n + ids.shape[1] - 1 :]  # [R, 1 + C, d]
    predictor = [[0] + [1 + c for c in path] for path in tree.nodes]
    return summed_logprobs(states, head, predictor, targets)


def _embeddings(
    backbone, ids: torch.Tensor, mask: torch.Tensor, targets: list[list[int]], tree: LabelTree
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``[R, n+W+C, d]`` inputs ``[pads ; P ; prefix ; nodes]``, their 0/1 mask and the prompt length ``n``.

    Each label's row ``[pads ; prefix ; target]`` goes through ``_inputs`` (the prompt reads the prefix only);
    node ``c`` takes its embedding from the row of a label that feeds it, at its column.
    """
    size, width = ids.shape
    rows: dict[int, torch.Tensor] = {}
    prefix = prefix_mask = None
    n = 0
    for k in sorted({k for k, _ in tree.origin} | {0}):
        target = torch.tensor(targets[k], device=ids.device).expand(size, -1)
        row_ids = torch.cat([ids, target], dim=1)
        row_mask = torch.cat([mask, torch.ones_like(target)], dim=1)
        source = torch.cat([mask, torch.zeros_like(target)], dim=1)
        embeds, full_mask, _, n = backbone._inputs(row_ids, row_mask, source)  # [R, n+W+T_k, d]
        rows[k] = embeds[:, n + width :]
        if prefix is None:
            prefix, prefix_mask = embeds[:, : n + width], full_mask[:, : n + width]
    nodes = torch.stack([rows[k][:, m] for k, m in tree.origin], dim=1)  # [R, C, d]
    full_mask = torch.cat([prefix_mask, prefix_mask.new_ones(size, len(tree))], dim=1)
    return torch.cat([prefix, nodes], dim=1), full_mask, n


def _positions(full_mask: torch.Tensor, mask: torch.Tensor, tree: LabelTree, n: int) -> torch.Tensor:
    """Position ids ``[R, n+W+C]``: the prefix's from its mask, node ``c`` at ``n + len + depth_c``."""
    prefix = positions_from_mask(full_mask[:, : full_mask.shape[1] - len(tree)])
    nodes = (n + mask.sum(-1, keepdim=True)) + tree.depth.unsqueeze(0)
    return torch.cat([prefix, nodes], dim=1)


def _late_hidden(backbone, inner, ids: torch.Tensor, mask: torch.Tensor, tree: LabelTree):
    """LPT's split forward (``DecoderBackbone._hidden``) on ``[prefix ; nodes]`` with the tree mask."""
    size, width = ids.shape
    lp = backbone.method.insert_layer
    text_ids = torch.cat([ids, tree.tokens.expand(size, -1)], dim=1)  # [R, W+C]
    text_mask = torch.cat([mask, mask.new_ones(size, len(tree))], dim=1)
    source = torch.cat([mask, mask.new_zeros(size, len(tree))], dim=1)
    with torch.no_grad():
        low = backbone._run_layers(
            inner.layers[:lp],
            backbone.embed_ids(text_ids),
            text_mask,
            _positions(text_mask, mask, tree, 0),
            tree.attention_rule(width),
        )
    aligned, _ = left_align(low, text_mask)
    aligned_mask, _ = left_align(text_mask, text_mask)
    aligned_source, _ = left_align(source, text_mask)
    prompt = backbone.method.layer_prompt(aligned, aligned_source)  # [R, l, d], from the prefix only
    full, full_mask = backbone._place_prompt(
        prompt, aligned, aligned_mask, text_mask
    )  # [pads;P;prefix;nodes]
    n = full.shape[1] - aligned.shape[1]
    positions = _positions(full_mask, mask, tree, n)
    hidden = backbone._run_layers(
        inner.layers[lp:], full, full_mask, positions, tree.attention_rule(n + width)
    )
    return inner.norm(hidden), n


def reference_scores(backbone, batch: dict[str, torch.Tensor], label_strings: list[str]) -> torch.Tensor:
    """``[R, K]`` by one forward per label: each label's target tokens appended to the prefix (the former path)."""
    prefix_mask = (batch["labels"] == -100) & batch["attention_mask"].bool()
    lengths = prefix_mask.sum(-1)  # prefixes are right-aligned at 0 in the encoded rows
    size, width = batch["input_ids"].shape[0], int(lengths.max())
    scores = []
    for text in label_strings:
        target = torch.tensor(backbone._target_ids(text), device=lengths.device)
        total = width + len(target)
        ids = torch.full((size, total), backbone.pad_id, dtype=torch.long, device=lengths.device)
        labels = torch.full_like(ids, -100)
        cols = torch.arange(total, device=ids.device).unsqueeze(0)
        in_prefix = cols < lengths.unsqueeze(1)
        ids[:, :width] = torch.where(in_prefix[:, :width], batch["input_ids"][:, :width], ids[:, :width])
        offset = cols - lengths.unsqueeze(1)
        in_target = (offset >= 0) & (offset < len(target))
        target_ids = target[offset.clamp(0, len(target) - 1)]
        ids = torch.where(in_target, target_ids, ids)
        labels = torch.where(in_target, target_ids, labels)
        mask = (in_prefix | in_target).long()
        logp, rows = backbone._target_logprobs({"input_ids": ids, "attention_mask": mask, "labels": labels})
        scores.append(torch.zeros(size, device=logp.device).index_add_(0, rows, logp))
    return torch.stack(scores, dim=1)
