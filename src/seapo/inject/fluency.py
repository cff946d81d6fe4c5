"""The fluency gate: reject a negative whose edit leaves the text broken, not merely wrong.

A plausible in-place edit ("Osaka" -> "New York", "is" -> "isn't", "395" -> "197") puts tokens in
the text that a small language model finds about as likely as the ones they replace; a broken one
("The reason is simply that find the ith element", "there weren't no", "changed their approach to
desperate", an English sentence dropped into a Spanish answer) puts in at least one token it finds
far less likely. The measure, per (positive, negative) pair, under a scorer model (the embedded
SmolLM2-135M by default):

1. both texts are tokenized and aligned (difflib on token ids): the changed tokens of each side;
2. each side is scored with up to ``context_tokens`` tokens before its first change as context (at
   most ``max_tokens`` in all), and its **worst** changed token kept: the lowest log-likelihood
   (0 for a side with no changed token: a pure insertion or deletion);
3. ``drop`` = worst of the positive - worst of the negative, in nats: how much less likely the
   edit's least likely token is than the least likely token it replaced. The pair fails when
   ``drop > max_drop``.

A mean over the changed tokens (and a few after them) separated the hand-checked pairs far worse
(docs/fluency.md): one broken token is diluted by the fluent ones around it.
The threshold was measured on hand-checked rules negatives (tests/inject/data/fluency_pairs.jsonl;
figures and cost in docs/fluency.md). The gate is off by default (``enabled``): it loads a model and
costs far more than the rules injector itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from seapo.config import SeapoConfig
from seapo.models.loading import DtypeName


class FluencyConfig(SeapoConfig):
    """Settings of :class:`FluencyGate`."""

    enabled: bool = Field(False, description="Check every negative's fluency (off by default: the scorer model "
                          "costs ~100x the rules injector; docs/fluency.md).")
    model: str = Field("embedded", description="Scorer model: 'embedded', a Hugging Face folder, a .gguf file or a "
                       "Hub id.")
    dtype: DtypeName = Field("auto", description="Scorer dtype: auto (bf16 on GPUs and on CPUs with native bf16, "
                             "else fp32), bf16, fp16 or fp32.")
    device: str | None = Field(None, description="Scorer device (default: CUDA if present, else CPU).")
    max_drop: float = Field(10.0, gt=0, description="Largest allowed fall, in nats, from the log-likelihood of the "
                            "least likely replaced token to that of the edit's least likely token (measured on "
                            "hand-checked pairs: docs/fluency.md).")
    context_tokens: int = Field(32, ge=0, description="Tokens before the first change given to the scorer as context.")
    max_tokens: int = Field(160, ge=16, description="Most tokens scored per text (context and edits; later edits "
                            "beyond it are not scored).")
    batch_size: int = Field(16, ge=1, description="Texts per forward pass.")


@dataclass
class _Span:
    """One text's scored piece: token ids (with the start token) and the positions to average."""

    ids: list[int]
    targets: list[int]


class FluencyGate:
    """``check(pairs)``: None for a fluent negative, else the reason it was rejected.

    Cheap to build; the scorer loads on the first :meth:`check` (or :meth:`load`); ``close()``
    frees it. ``with FluencyGate(config) as gate:`` does both.
    """

    def __init__(self, config: FluencyConfig | None = None) -> None:
        self.config = config or FluencyConfig()
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> FluencyGate:
        if self.model is None:
            from seapo.models import load_causal_lm, load_tokenizer, resolve_model

            resolved = resolve_model(self.config.model)
            self.tokenizer = load_tokenizer(resolved, padding_side="right")
            self.model = load_causal_lm(resolved, dtype=self.config.dtype, device=self.config.device)
            tok = self.tokenizer
            self._start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return self

    def close(self) -> None:
        self.model = self.tokenizer = None

    def fingerprint(self) -> str:
        """The scorer's content, the dtype it runs in and every setting that moves a verdict (not
        ``batch_size``): part of the injection store's resume key. Loads nothing."""
        from seapo.fingerprint import stable_hash
        from seapo.models.loading import weights_identity

        cfg = self.config
        settings = cfg.model_dump(mode="json", exclude={"enabled", "batch_size", "model", "dtype", "device"})
        return f"fluency:{stable_hash([*weights_identity(cfg.model, cfg.dtype, cfg.device), settings])}"

    def __enter__(self) -> FluencyGate:
        return self.load()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _spans(self, positive: list[int], negative: list[int]) -> tuple[_Span, _Span] | None:
        """The scored pieces of both sides (targets: the changed tokens); None when nothing changed."""
        cfg = self.config
        opcodes = [op for op in difflib.SequenceMatcher(None, positive, negative, autojunk=False).get_opcodes()
                   if op[0] != "equal"]
        if not opcodes:
            return None
        spans = []
        for ids, changes in ((positive, [(i1, i2) for _, i1, i2, _, _ in opcodes]),
                             (negative, [(j1, j2) for _, _, _, j1, j2 in opcodes])):
            targets = sorted({t for start, end in changes for t in range(start, end)})
            if not targets:
                spans.append(_Span([], []))
                continue
            low = max(0, targets[0] - cfg.context_tokens)
            high = min(len(ids), low + cfg.max_tokens)
            kept = [t for t in targets if t < high]
            # position p of ids is index p - low + 1 of the scored piece (index 0: the start token)
            spans.append(_Span([self._start, *ids[low:high]], [t - low + 1 for t in kept]))
        return spans[0], spans[1]

    def token_logprobs(self, spans: list[_Span]) -> list[list[float]]:
        """The log-likelihood of each span's target tokens, in order."""
        import torch

        model, cfg = self.model, self.config
        base = getattr(model, model.base_model_prefix)
        head = model.get_output_embeddings()
        pad = self.tokenizer.pad_token_id
        out: list[list[float]] = [[] for _ in spans]
        order = sorted(range(len(spans)), key=lambda i: len(spans[i].ids))
        with torch.inference_mode():
            for start in range(0, len(order), cfg.batch_size):
                batch = [spans[i] for i in order[start:start + cfg.batch_size]]
                width = max(len(s.ids) for s in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, span in enumerate(batch):
                    ids[row, :len(span.ids)] = torch.tensor(span.ids)
                    mask[row, :len(span.ids)] = 1
                hidden = base(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).last_hidden_state
                rows = torch.tensor([row for row, s in enumerate(batch) for _ in s.targets])
                cols = torch.tensor([t for s in batch for t in s.targets])
                # only the needed positions go through the vocabulary head (not batch x width x vocab)
                logp = torch.log_softmax(head(hidden[rows, cols - 1]).float(), dim=-1)
                picked = logp.gather(1, ids[rows, cols].to(logp.device).unsqueeze(1)).squeeze(1).cpu().tolist()
                offset = 0
                for k, span in enumerate(batch):
                    out[order[start + k]] = picked[offset:offset + len(span.targets)]
                    offset += len(span.targets)
        return out

    def drops(self, items: Sequence[tuple[str, str]]) -> list[float | None]:
        """Per pair, how many nats less likely the edit's worst token is than the worst token it replaced;
        None: the texts do not differ."""
        self.load()
        encode = self.tokenizer
        pairs = [self._spans(encode(positive, add_special_tokens=False)["input_ids"],
                             encode(negative, add_special_tokens=False)["input_ids"]) for positive, negative in items]
        spans = [span for pair in pairs if pair is not None for span in pair if span.targets]
        worst = iter(min(scores) for scores in self.token_logprobs(spans))
        out: list[float | None] = []
        for pair in pairs:
            if pair is None:
                out.append(None)
                continue
            positive, negative = (next(worst) if span.targets else 0.0 for span in pair)
            out.append(round(positive - negative, 4))
        return out

    def check(self, items: Sequence[tuple[str, str]]) -> list[str | None]:
        """For (positive, negative) pairs: None when the negative passes, else why it is rejected."""
        limit = self.config.max_drop
        return [None if drop is None or drop <= limit else
                f"fluency: the edit's least likely token is {drop:.2f} nats less likely than the least likely token "
                f"it replaced (more than the {limit:.2f} a plausible edit costs)" for drop in self.drops(items)]
