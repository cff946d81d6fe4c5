"""The model side of evaluation: batched log-likelihoods and raw-text generation.

Prompts here are plain text WITHOUT the chat template (the paper's open-instruct protocol),
which is why this lives in ``evaluate/`` instead of going through :mod:`seapo.backends`
(whose backends always apply the chat template).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seapo.models.loading import eos_token_ids

if TYPE_CHECKING:
    import torch

Progress = Callable[[int], None]


@dataclass(frozen=True)
class LoglikRequest:
    """Score ``continuation`` after ``context``: the sum of the continuation tokens' log-probs."""

    context: str
    continuation: str


@dataclass
class Sample:
    """One generated completion, already cut at the first stop sequence."""

    text: str
    finish_reason: str  #: ``stop`` (stop sequence or EOS) or ``length``


def split_tokens(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of context and continuation, split the way lm-evaluation-harness does.

    The whole string is encoded once and the continuation is what follows the context's own
    encoding, so word-boundary merges match what the model sees in running text. Trailing
    spaces of the context move to the continuation first (``"A: " + "x"`` == ``"A:" + " x"``).
    """
    spaces = len(context) - len(context.rstrip(" "))
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    if whole[:len(ctx)] != ctx:  # a merge across the boundary: fall back to separate encodings
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return ctx, cont
    return ctx, whole[len(ctx):]


class EvalLM:
    """A causal LM plus tokenizer, with the two operations every task needs.

    * :meth:`loglikelihood` -- batched, sorted by length, with the common prompt prefix of a
      group (e.g. TruthfulQA's 6-shot primer, MMLU's 5 dev examples of a subject) run once
      and its key/value cache shared by every row; rows whose model input is identical
      (single-token answers such as MMLU's " A".." D") are computed once.
    * :meth:`generate` -- batched, left-padded, greedy or sampled, cut at stop sequences.
    """

    def __init__(self, model: str, *, dtype: str = "auto", device: str | None = None,
                 batch_size: int = 16, trust_remote_code: bool = False) -> None:
        from seapo.models import load_causal_lm, load_tokenizer, resolve_model

        self.resolved = resolve_model(model)
        self.tokenizer = load_tokenizer(self.resolved, trust_remote_code=trust_remote_code, padding_side="left")
        self.model = load_causal_lm(self.resolved, dtype=dtype, device=device,
                                    trust_remote_code=trust_remote_code)
        self.batch_size = batch_size
        self.prefix_cache_enabled = True
        self._prefix_memo: dict[tuple[int, ...], object] = {}

    # ------------------------------------------------------------------ identity
    @property
    def dtype_name(self) -> str:
        return str(self.model.dtype).replace("torch.", "")

    def fingerprint(self) -> str:
        """Stable id of the weights + dtype: changes when the model files change."""
        return model_fingerprint(self.resolved.path, self.dtype_name)

    @property
    def bos(self) -> list[int]:
        """BOS id when the tokenizer adds one to plain text (Llama-2 style), else nothing."""
        ids = self.tokenizer("x")["input_ids"]
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None and ids and ids[0] == bos else []

    # ------------------------------------------------------------------ log-likelihood
    def loglikelihood(self, requests: Sequence[LoglikRequest], groups: Sequence[str] | None = None,
                      progress: Progress | None = None) -> list[float]:
        """Summed log-prob of each request's continuation, in input order.

        ``groups`` (one label per request) marks requests that share a long prompt prefix;
        each group's common prefix is encoded once. Without groups, all requests form one.
        """
        return [score for score, _ in self.loglikelihood_greedy(requests, groups, progress)]

    def loglikelihood_greedy(self, requests: Sequence[LoglikRequest], groups: Sequence[str] | None = None,
                             progress: Progress | None = None) -> list[tuple[float, bool]]:
        """Like :meth:`loglikelihood`, plus whether greedy decoding would produce each continuation
        (lm-evaluation-harness's ``(logprob, is_greedy)`` pairs)."""
        import torch

        groups = list(groups) if groups is not None else ["" for _ in requests]
        bos = self.bos
        encoded = []
        for req in requests:
            ctx, cont = split_tokens(self.tokenizer, req.context, req.continuation)
            ctx = bos + ctx
            if not ctx:  # an empty context still needs one token to predict from
                ctx = [self.tokenizer.eos_token_id]
            if not cont:
                raise ValueError(f"empty continuation for context ending {req.context[-40:]!r}")
            encoded.append((ctx, cont))
        # Rows: model input = (context + continuation)[:-1]; identical inputs are shared.
        row_of: dict[tuple[int, ...], int] = {}
        rows: list[tuple[int, ...]] = []
        row_group: list[str] = []
        row_ctx: list[int] = []  # shortest context length among the requests sharing a row
        row_weight: list[int] = []  # requests served by a row, for progress in requests
        for (ctx, cont), group in zip(encoded, groups, strict=True):
            key = tuple(ctx + cont[:-1])
            if key not in row_of:
                row_of[key] = len(rows)
                rows.append(key)
                row_group.append(group)
                row_ctx.append(len(ctx))
                row_weight.append(1)
            else:
                row_ctx[row_of[key]] = min(row_ctx[row_of[key]], len(ctx))
                row_weight[row_of[key]] += 1
        row_logprobs: list[torch.Tensor | None] = [None] * len(rows)
        by_group: dict[str, list[int]] = {}
        for i, group in enumerate(row_group):
            by_group.setdefault(group, []).append(i)
        for members in by_group.values():
            # The group prefix (few-shot primer) is encoded once and kept; it must end before
            # every row's last context token, whose logits are needed.
            base = _common_prefix([rows[i] for i in members])
            base = tuple(base[:min(len(base), min(row_ctx[i] for i in members) - 1)])
            base_cache = self._base_kv(base) if self.prefix_cache_enabled and len(base) >= 8 else None
            if base_cache is None:
                batches = self._plain_batches(members, rows)
                for batch in batches:
                    tails = self._forward_rows([rows[i] for i in batch], [row_ctx[i] - 1 for i in batch])
                    for i, logprobs in zip(batch, tails, strict=True):
                        row_logprobs[i] = logprobs
                    if progress:
                        progress(sum(row_weight[i] for i in batch))
                continue
            for batch, tails in self._cached_forward(members, rows, row_ctx, base, base_cache):
                for i, logprobs in zip(batch, tails, strict=True):
                    row_logprobs[i] = logprobs
                if progress:
                    progress(sum(row_weight[i] for i in batch))
        out = []
        for ctx, cont in encoded:
            row = row_of[tuple(ctx + cont[:-1])]
            lp = row_logprobs[row]
            # Logits at position p predict token p+1: the continuation's tokens are predicted
            # from positions len(ctx)-1 .. len(ctx)+len(cont)-2; ``lp`` starts at row_ctx-1.
            offset = row_ctx[row] - 1
            positions = torch.arange(len(ctx) - 1 - offset, len(ctx) + len(cont) - 1 - offset)
            tokens = torch.tensor(cont)
            out.append((float(lp[positions, tokens].sum()), bool((lp[positions].argmax(-1) == tokens).all())))
        return out

    def _plain_batches(self, members: list[int], rows) -> list[list[int]]:
        order = sorted(members, key=lambda i: len(rows[i]), reverse=True)  # similar lengths pad little
        return [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]

    def _forward_rows(self, batch_rows: list[tuple[int, ...]], firsts: list[int]) -> list[torch.Tensor]:
        """Whole rows, no cache (models whose KV cache cannot be shared)."""
        import torch

        width = max(len(r) for r in batch_rows)
        ids = torch.full((len(batch_rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, tokens in enumerate(batch_rows):  # right padding: pads only follow real tokens
            ids[row, :len(tokens)] = torch.tensor(tokens)
        # With right padding and causal attention no real token attends to a pad, so an
        # all-ones mask is exact and lets SDPA take its fast causal path.
        hidden = self._hidden(input_ids=ids, attention_mask=torch.ones_like(ids))
        return self._tail_logprobs(hidden, [(first, len(tokens)) for tokens, first in zip(batch_rows, firsts,
                                                                                        strict=True)])

    def _cached_forward(self, members: list[int], rows, row_ctx, base: tuple[int, ...], base_cache):
        """Yield ``(row indices, log-prob tails)`` computed on top of cached prefixes.

        Each row's *prefix* is its context minus the last token. ``batch_size`` distinct prefixes
        at a time are extended from the group's base cache in one forward (right-padded); then
        the rows of those contexts -- the last context token plus the answer -- run in batches
        of up to ``2 * batch_size`` rows that each read their own context's cache row. Padding
        inside the cache is masked out and positions are given explicitly, so every row sees
        exactly its own context.
        """
        import torch

        device = self.model.device
        prefixes: dict[tuple[int, ...], list[int]] = {}
        for i in members:
            prefixes.setdefault(rows[i][:row_ctx[i] - 1], []).append(i)
        order = sorted(prefixes, key=len)  # similar lengths pad little
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            big = copy.deepcopy(base_cache)
            big.batch_repeat_interleave(len(chunk))
            width = max(len(p) for p in chunk) - len(base)
            if width:
                ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id, dtype=torch.long)
                for q, p in enumerate(chunk):
                    ids[q, :len(p) - len(base)] = torch.tensor(p[len(base):])
                with torch.inference_mode():
                    self.model(input_ids=ids.to(device), use_cache=True, **{self._cache_kwarg: big},
                               attention_mask=torch.ones((len(chunk), len(base) + width), dtype=torch.long,
                                                         device=device))
            cached_len = len(base) + width
            members_of_chunk = [(q, i) for q, p in enumerate(chunk) for i in prefixes[p]]
            step = 2 * self.batch_size
            for k in range(0, len(members_of_chunk), step):
                part = members_of_chunk[k:k + step]
                which = torch.tensor([q for q, _ in part], device=device)
                starts = [len(chunk[q]) for q, _ in part]
                new_width = max(len(rows[i]) - s for (_, i), s in zip(part, starts, strict=True))
                ids = torch.full((len(part), new_width), self.tokenizer.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(part), cached_len + new_width), dtype=torch.long)
                positions = torch.zeros((len(part), new_width), dtype=torch.long)
                for r, ((_, i), s) in enumerate(zip(part, starts, strict=True)):
                    ids[r, :len(rows[i]) - s] = torch.tensor(rows[i][s:])
                    mask[r, :s] = 1                       # the row's own prefix ...
                    mask[r, cached_len:] = 1              # ... and its new tokens, not the padding
                    positions[r] = torch.arange(s, s + new_width)
                cache = copy.copy(big)
                cache.layers = [copy.copy(layer) for layer in big.layers]
                for layer in cache.layers:
                    layer.keys = layer.keys.index_select(0, which)
                    layer.values = layer.values.index_select(0, which)
                hidden = self._hidden(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache)
                spans = [(row_ctx[i] - 1 - s, len(rows[i]) - s) for (_, i), s in zip(part, starts, strict=True)]
                yield [i for _, i in part], self._tail_logprobs(hidden, spans)

    def _hidden(self, *, input_ids, attention_mask, position_ids=None, cache=None):
        """Last hidden states (or logits when the head is not a plain linear layer)."""
        import torch

        device = self.model.device
        kwargs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device),
                  "use_cache": cache is not None}
        if position_ids is not None:
            kwargs["position_ids"] = position_ids.to(device)
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        with torch.inference_mode():
            if self._head_layer() is None:
                return self.model(**kwargs).logits
            return self.model.get_decoder()(**kwargs).last_hidden_state

    def _tail_logprobs(self, hidden, spans: list[tuple[int, int]]) -> list[torch.Tensor]:
        """Log-softmax (float32, CPU) of positions ``a:b`` of each row.

        Only the answer positions go through the LM head (a 49k-vocabulary head over every
        prompt position would cost as much as the model). The head runs in the model's dtype:
        an fp32 head on bf16 hidden states costs more than the whole forward on CPU and gains
        little, since most of bf16's error comes from the body.
        """
        import torch

        head = self._head_layer()
        out = []
        with torch.inference_mode():
            picked = [hidden[row, a:b] for row, (a, b) in enumerate(spans)]
            logits = picked if head is None else torch.split(head(torch.cat(picked)), [b - a for a, b in spans])
            for x in logits:
                out.append(torch.log_softmax(x.float(), dim=-1).cpu())
        return out

    def _head_layer(self):
        """The LM head when it is a plain linear layer applied to the decoder's output; None
        where logits need more (soft-capping, scaling) and the model's own forward is used."""
        if not hasattr(self, "_head"):
            import torch

            head = self.model.get_output_embeddings()
            config = self.model.config
            plain = (isinstance(head, torch.nn.Linear) and hasattr(self.model, "get_decoder")
                     and getattr(config, "final_logit_softcapping", None) is None
                     and getattr(config, "logit_scale", None) is None
                     and type(self.model).__name__.endswith("ForCausalLM"))
            self._head = head if plain else None
        return self._head

    def _base_kv(self, base: tuple[int, ...]):
        """The memoized KV cache of a group prefix; None (and prefix caching turned off) for
        models whose cache cannot be shared this way (sliding windows, recurrent state...)."""
        import torch

        if base not in self._prefix_memo:
            if len(self._prefix_memo) >= 8:
                self._prefix_memo.clear()
            try:
                with torch.inference_mode():
                    out = self.model(input_ids=torch.tensor([base], device=self.model.device), use_cache=True)
                cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
                if type(cache).__name__ != "DynamicCache" or any(
                        type(layer).__name__ != "DynamicLayer" for layer in getattr(cache, "layers", [None])):
                    raise TypeError("only plain dynamic caches can be shared")
            except (TypeError, ValueError, AttributeError):
                self.prefix_cache_enabled = False
                return None
            self._prefix_memo[base] = cache
        return self._prefix_memo[base]

    @property
    def _cache_kwarg(self) -> str:
        # transformers 5.x renamed ``past_key_values`` to ``cache``; accept both.
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, stop: Sequence[str] = (),
                 temperature: float = 0.0, top_p: float = 1.0, num_samples: int = 1, seed: int = 0,
                 progress: Progress | None = None) -> list[list[Sample]]:
        """``num_samples`` completions per prompt (greedy when temperature is 0), input order."""
        import torch

        bos = self.bos
        encoded = [bos + self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        results: list[list[Sample]] = [[] for _ in prompts]
        pad = self.tokenizer.pad_token_id
        eos = self._eos_ids()
        sampling = temperature > 0
        # Several samples of one prompt run as rows of the same batch.
        per_batch = max(1, self.batch_size // num_samples) if num_samples <= self.batch_size else 1
        for start in range(0, len(order), per_batch):
            batch = order[start:start + per_batch]
            for first in range(0, num_samples, self.batch_size):
                copies = min(num_samples - first, self.batch_size)
                rows = [encoded[i] for i in batch for _ in range(copies)]
                width = max(len(r) for r in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, tokens in enumerate(rows):
                    ids[r, width - len(tokens):] = torch.tensor(tokens)
                    mask[r, width - len(tokens):] = 1
                if sampling:
                    torch.manual_seed(seed + start * 1000 + first)
                with torch.inference_mode():
                    out = self.model.generate(
                        input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device),
                        max_new_tokens=max_new_tokens, do_sample=sampling,
                        temperature=temperature if sampling else None, top_p=top_p if sampling else None,
                        top_k=None, eos_token_id=eos, pad_token_id=pad,
                        stop_strings=list(stop) or None, tokenizer=self.tokenizer if stop else None,
                    )
                for r in range(len(rows)):
                    new = out[r, width:].tolist()
                    ended = next((k for k, t in enumerate(new) if t in eos), None)
                    text = self.tokenizer.decode(new if ended is None else new[:ended], skip_special_tokens=True)
                    cut, hit = cut_at_stop(text, stop)
                    reason = "stop" if hit or ended is not None else "length"
                    results[batch[r // copies]].append(Sample(cut, reason))
            if progress:
                progress(len(batch))
        return results

    def _eos_ids(self) -> list[int]:
        return eos_token_ids(self.model, self.tokenizer)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop sequence, and whether one was found."""
    cut = len(text)
    for s in stop:
        k = text.find(s)
        if k != -1:
            cut = min(cut, k)
    return text[:cut], cut < len(text)


def _common_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    if not rows:
        return []
    first, n = rows[0], min(len(r) for r in rows)
    k = 0
    while k < n and all(r[k] == first[k] for r in rows):
        k += 1
    return list(first[:k])


def model_fingerprint(path: str, dtype: str) -> str:
    """Hash of the model folder, its config and weight files' names, sizes and mtimes, plus the dtype.

    The folder path is part of it: two models saved within the same second with equally sized
    files (fine-tunes of one base) must not share cached results.

    A Hub id (no local folder) is fingerprinted by its id: pin a revision by downloading it.
    """
    folder = Path(path)
    parts: list[str] = [dtype]
    if folder.is_dir():
        parts.append(str(folder.resolve()))
        for f in sorted(folder.iterdir()):
            if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin", ".model"}):
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
        config = folder / "config.json"
        if config.is_file():
            parts.append(json.dumps(json.loads(config.read_text()), sort_keys=True))
    else:
        parts.append(f"hub:{path}:{os.environ.get('HF_REVISION', 'main')}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
