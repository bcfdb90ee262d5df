"""Decoder-only backbones (causal LMs: Llama, SmolLM2, GPT-2, ...) (docs/decoder.md).

Text format [dec]: the lineage's Llama path (DePT ``train.py``): the task's source text, then the answer cue
``" Label :"``, then the target, i.e. the task's label string (the digit of its HF class index, §5.1) and EOS:

    tokens  = [source ; " Label :" ; target ; EOS]          right-padded to exactly s (the run's max_length)
    labels  = [-100 …  ; -100 …     ; target ; EOS]         loss only on the target tokens

The source is truncated (from its end) so that cue and target always fit in ``s``.

Prompt placement. Methods always see the *real tokens aligned at position 0* (as on right-padded input), so
DePT's position-wise row ``i`` meets real token ``i`` whatever the padding side (§2.4). The virtual tokens are
placed directly before the first real token: ``[pads ; P ; tokens]`` for left padding (generation), ``[P ;
tokens ; pads]`` for right padding (training), never "prompt, pads, text" (the PEFT pitfall, issue 1093).
Position ids come from the cumulative attention mask, so the first real position (the prompt's first row) is 0
on either side and the two layouts give the same logits for the same example (tested).

Loss: only the hidden states that predict a target token go through the (frozen, large-vocabulary) LM head, not
all ``n + s`` positions: ``[B, n+s, V]`` logits would dominate step memory for a 49k vocabulary.

Evaluation: by scoring each label string (default for decoders: the one with the highest summed
log-likelihood after the cue, every label in one pass: ``bench/backbones/decoder_scoring.py``) or by greedy generation from left-padded prefixes (at most 20 new tokens).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers.masking_utils import create_causal_mask

from bench.backbones.base import Backbone, EncodedSplit
from bench.backbones.decoder_scoring import label_scores
from bench.backbones.positions import left_align, positions_from_mask
from bench.errors import InputError

ANSWER_CUE = " Label :"


class DecoderBackbone(Backbone):
    family = "decoder"
    prompt_placement = "before_first_real_token"

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _target_ids(self, text: str) -> list[int]:
        return self._ids(" " + text) + [self.eos_id]

    def encode(self, examples: list, label_strings: list[str]) -> EncodedSplit:
        """Right-padded ``[source ; cue ; target ; EOS]`` rows of exactly ``s`` tokens, loss on the target."""
        s = self.max_length
        cue = self._ids(ANSWER_CUE)
        ids = torch.full((len(examples), s), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), s), dtype=torch.long)
        labels = torch.full((len(examples), s), -100, dtype=torch.long)
        for i, example in enumerate(examples):
            target = self._target_ids(example.target)
            room = s - len(cue) - len(target)
            if room < 1:
                raise InputError(f"max_length={s} leaves no room for the source before cue and target")
            prefix = self._ids(example.source)[:room] + cue
            row = prefix + target
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            labels[i, len(prefix) : len(row)] = torch.tensor(target)
        return EncodedSplit(ids, mask, labels, [e.target for e in examples], labels_follow_inputs=True)

    def count_tokens(self, batch: dict[str, torch.Tensor]) -> tuple[int, int]:
        """Targets are inside the sequence here: real tokens = the mask's sum, positions = its size."""
        mask = batch["attention_mask"]
        return int(mask.sum()), mask.numel()

    # ---- forward ------------------------------------------------------------------------------------------
    @staticmethod
    def _place_prompt(
        prompt: torch.Tensor, aligned: torch.Tensor, aligned_mask: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[P ; real ; pads]`` in aligned order, rotated so a left-padded row reads ``[pads ; P ; real]``.

        ``prompt`` is ``[n, d]`` or ``[B, n, d]``; ``aligned`` ``[B, L, d]`` holds each row's real tokens first.
        The prompt then sits right before the first real token on either padding side; a real token at
        column ``c`` of the original layout lands at column ``c + n``.
        """
        prompt = prompt.to(aligned.dtype)
        if prompt.dim() == 2:
            prompt = prompt.unsqueeze(0).expand(aligned.shape[0], -1, -1)
        n = prompt.shape[1]
        full = torch.cat([prompt, aligned], dim=1)
        full_mask = torch.cat([aligned_mask.new_ones(aligned_mask.shape[0], n), aligned_mask], dim=1)
        lead = (attention_mask.long().cumsum(-1) == 0).sum(-1)  # left pads per row
        if bool(lead.any()):
            length = full.shape[1]
            shift = (torch.arange(length, device=full.device).unsqueeze(0) - lead.unsqueeze(1)) % length
            full = full.gather(1, shift.unsqueeze(-1).expand_as(full))
            full_mask = full_mask.gather(1, shift)
        return full, full_mask

    def _inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, source_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Embeddings with the prompt before the first real token, the mask, position ids, and the prompt length.

        Method hooks run on the left-aligned view (real token i at row i), whatever the padding side.
        ``source_mask`` ``[B, L]`` marks the prefix (source and cue) when the rows also hold target tokens
        (training, label scoring): an instance-dependent prompt (ATTEMPT's ``max E(x)``) is built from the
        prefix only, with the target positions shown as padding, as an encoder would see ``[source ; pads]``.
        Otherwise the prompt would carry the label to every position (it sits before the text).
        """
        embeds = self.embed_ids(input_ids)
        if self.method is None or self.method.attach != "input":
            return embeds, attention_mask, positions_from_mask(attention_mask), 0
        aligned, order = left_align(embeds, attention_mask)
        aligned_mask, _ = left_align(attention_mask, attention_mask)
        if source_mask is None:
            prompt = self.method.prompt(aligned, aligned_mask)
        else:
            source_ids = torch.where(source_mask.bool(), input_ids, torch.full_like(input_ids, self.pad_id))
            source_embeds, _ = left_align(self.embed_ids(source_ids), attention_mask)
            aligned_source, _ = left_align(source_mask.long(), attention_mask)
            prompt = self.method.prompt(source_embeds, aligned_source)
        aligned = self.method.update_embeds(aligned)
        if prompt is None:
            restored = torch.empty_like(aligned).scatter_(1, order.unsqueeze(-1).expand_as(aligned), aligned)
            return restored, attention_mask, positions_from_mask(attention_mask), 0
        full, full_mask = self._place_prompt(prompt, aligned, aligned_mask, attention_mask)
        n = full.shape[1] - aligned.shape[1]
        readable = aligned_mask if source_mask is None else aligned_source
        self._set_decoder_slots(n, readable, attention_mask)
        return full, full_mask, positions_from_mask(full_mask), n

    def _set_decoder_slots(
        self, n: int, aligned_readable: torch.Tensor, attention_mask: torch.Tensor
    ) -> None:
        """The prompt's columns ``lead + 0..n-1`` (``lead``: a row's left pads) and the readable prefix columns,
        placed as :meth:`_place_prompt` places the prompt and the text."""
        zeros = aligned_readable.new_zeros(aligned_readable.shape[0], n)
        placed = torch.cat([zeros, aligned_readable], dim=1)
        lead = (attention_mask.long().cumsum(-1) == 0).sum(-1)  # [B]
        length = placed.shape[1]
        shift = (torch.arange(length, device=placed.device).unsqueeze(0) - lead.unsqueeze(1)) % length
        slots = lead.unsqueeze(1) + torch.arange(n, device=placed.device).unsqueeze(0)  # [B, n]
        self.set_prompt_slots(slots, placed.gather(1, shift))

    def prompt_stack(self):
        return self._decoder_and_head()[0].layers

    def _decoder_and_head(self):
        model = self.model
        inner = model.get_decoder() if hasattr(model, "get_decoder") else model.model
        return inner, model.get_output_embeddings()

    # ---- layer methods (LPT) ------------------------------------------------------------------------------
    def _check_layer_support(self) -> None:
        inner, _ = self._decoder_and_head()
        if not all(hasattr(inner, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
            raise InputError(
                f"model {self.name!r} is not a Llama-style decoder (embed_tokens, layers, norm, rotary_emb), "
                "which layer methods need"
            )
        self._layer_count_check(len(inner.layers))

    def _run_layers(
        self,
        layers,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        and_mask: Callable | None = None,
    ):
        """Decoder ``layers`` on ``hidden`` ``[B, L, d]`` with the 0/1 ``mask``, as the model's own forward does.

        ``and_mask`` narrows the causal mask further (label scoring's tree, ``bench/backbones/label_tree.py``)."""

        inner, _ = self._decoder_and_head()
        causal = create_causal_mask(
            config=inner.config,
            inputs_embeds=hidden,
            attention_mask=mask,
            cache=None,
            position_ids=positions,
            and_mask_function=and_mask,
        )
        rotary = inner.rotary_emb(hidden, position_ids=positions)
        for layer in layers:
            hidden = layer(hidden, attention_mask=causal, position_ids=positions, position_embeddings=rotary)
        return hidden

    def _hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        generator_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Final hidden states ``[B, n+L, d]`` and the number of virtual tokens ``n`` placed before the text.

        ``generator_mask`` marks the prefix (source and cue): what an instance-dependent prompt may read.

        Layer methods (LPT): layers ``1..L_p`` run without gradient on the text alone; the method builds
        ``P(x)`` from the layer-``L_p`` states of the **prefix only** (``generator_mask``: source and cue, never
        the target tokens, which would otherwise leak the label into a prompt every position attends to); the
        prompt goes right before the first real token and layers ``L_p+1..L`` run on the longer sequence. Position
        ids come from the new mask, so the prompt takes ``0..l−1`` and the text keeps its relative distances (as
        in the T5 port; RoPE only sees relative positions).
        """
        inner, _ = self._decoder_and_head()
        if self.layer_method is None:
            embeds, mask, positions, n = self._inputs(input_ids, attention_mask, generator_mask)
            return inner(
                inputs_embeds=embeds, attention_mask=mask, position_ids=positions
            ).last_hidden_state, n
        lp = self.method.insert_layer
        with torch.no_grad():
            low = self._run_layers(
                inner.layers[:lp],
                self.embed_ids(input_ids),
                attention_mask,
                positions_from_mask(attention_mask),
            )
        aligned, _ = left_align(low, attention_mask)
        aligned_mask, _ = left_align(attention_mask, attention_mask)
        source_mask = attention_mask if generator_mask is None else generator_mask
        aligned_source, _ = left_align(source_mask.long(), attention_mask)
        prompt = self.method.layer_prompt(aligned, aligned_source)  # [B, l, d]
        full, full_mask = self._place_prompt(prompt, aligned, aligned_mask, attention_mask)
        n = full.shape[1] - aligned.shape[1]
        hidden = self._run_layers(inner.layers[lp:], full, full_mask, positions_from_mask(full_mask))
        return inner.norm(hidden), n

    def _target_logprobs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of every target token ``[N_targets]`` and the row each belongs to."""
        labels = batch["labels"]
        prefix = (labels == -100) & batch["attention_mask"].bool()
        hidden, n = self._hidden(batch["input_ids"], batch["attention_mask"], prefix.long())
        _, head = self._decoder_and_head()
        # Hidden state at text position j-1 predicts the target token at j; a real token at column c sits at
        # column c + n after the prompt (either padding side).
        rows, cols = (labels != -100).nonzero(as_tuple=True)
        picked = hidden[rows, cols + n - 1]  # [N_targets, d]
        logits = head(picked).float()
        return logits.log_softmax(-1).gather(-1, labels[rows, cols].unsqueeze(-1)).squeeze(-1), rows

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the target tokens of the batch."""
        return -self._target_logprobs(batch)[0].mean()

    # ---- prediction ---------------------------------------------------------------------------------------
    def _prefixes(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``[source ; cue]`` part of each row (labels == -100 and real), left-padded: ids and mask."""
        prefix_mask = (batch["labels"] == -100) & batch["attention_mask"].bool()
        lengths = prefix_mask.sum(-1)
        width = int(lengths.max())
        ids = batch["input_ids"][:, :width]
        keep = torch.arange(width, device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        ids = torch.where(keep, ids, torch.full_like(ids, self.pad_id))
        # Right-aligned -> left-padded: rotate each row right by its padding.
        pad = width - lengths
        shift = (torch.arange(width, device=ids.device).unsqueeze(0) - pad.unsqueeze(1)) % width
        return ids.gather(1, shift), keep.long().gather(1, shift)

    def predict(
        self, batch: dict[str, torch.Tensor], mode: str = "score", label_strings: list[str] | None = None
    ) -> list[str]:
        if mode == "score":
            return self._score_labels(batch, label_strings or [])
        ids, mask = self._prefixes(batch)
        if self.layer_method is not None:
            return self._greedy_without_cache(ids, mask)
        embeds, full_mask, positions, _ = self._inputs(ids, mask)
        out = self.model.generate(
            inputs_embeds=embeds,
            attention_mask=full_mask,
            position_ids=positions,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_id,
        )
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _greedy_without_cache(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Greedy decoding for layer methods: the split forward again for each new token (no KV cache, since
        the lower layers see no prompt); the generator always reads the prefix only."""
        prefix = mask.clone()
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        new: list[torch.Tensor] = []
        for _ in range(self.max_new_tokens):
            hidden, _ = self._hidden(ids, mask, prefix)
            token = self._decoder_and_head()[1](hidden[:, -1]).argmax(-1)
            token = torch.where(done, torch.full_like(token, self.pad_id), token)
            new.append(token)
            done |= token == self.eos_id
            ids = torch.cat([ids, token.unsqueeze(1)], dim=1)
            mask = torch.cat([mask, (~done | (token == self.eos_id)).long().unsqueeze(1)], dim=1)
            prefix = torch.cat([prefix, torch.zeros_like(token).unsqueeze(1)], dim=1)
            if bool(done.all()):
                break
        out = torch.stack(new, dim=1)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _score_labels(self, batch: dict[str, torch.Tensor], label_strings: list[str]) -> list[str]:
        """Rank classification: the label whose target tokens have the highest summed log-probability after
        the prefix, all labels in one pass (``bench/backbones/decoder_scoring.py``)."""
        if not label_strings:
            raise ValueError("eval mode 'score' needs the task's label strings")
        best = label_scores(self, batch, label_strings).argmax(dim=1)
        return [label_strings[i] for i in best.tolist()]
