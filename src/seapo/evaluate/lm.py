"""The model side of log-likelihood tasks: seapo's batched, prefix-cached scorer.

Prompts are plain text WITHOUT the chat template (the paper's open-instruct protocol). Generation
does not happen here: :class:`EvalLM` holds a :class:`~seapo.backends.transformers_backend.TransformersBackend`
(whose loaded model and tokenizer it scores with), and every generation of an evaluation --
lm-eval's ``generate_until`` under :class:`~seapo.evaluate.lmeval_model.SeapoLM`, HumanEval's
greedy and sampled completions -- goes through :attr:`EvalLM.generator`'s ``generate`` with raw-text
requests (:class:`~seapo.backends.base.GenerationRequest` with ``prompt=``). The generator is that
transformers backend unless :func:`generation_backend` chose another (llama.cpp for a GGUF model,
vLLM on a GPU).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seapo.backends.base import GenerationBackend
from seapo.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
from seapo.errors import InputError
from seapo.evaluate.cache import model_key

if TYPE_CHECKING:
    import torch

Progress = Callable[[int], None]


@dataclass(frozen=True)
class LoglikRequest:
    """Score ``continuation`` after ``context``: the sum of the continuation tokens' log-probs."""

    context: str
    continuation: str


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
    """Log-likelihoods from a loaded :class:`TransformersBackend`.

    :meth:`loglikelihood` is batched and sorted by length, with the common prompt prefix of a
    group (e.g. TruthfulQA's 6-shot primer, MMLU's 5 dev examples of a subject) run once and its
    key/value cache shared by every row; rows whose model input is identical (single-token
    answers such as MMLU's " A".." D") are computed once.

    Args:
        model: a :class:`TransformersBackend` (loaded here if it is not yet), its config, or a
            model argument (anything :func:`seapo.models.resolve_model` accepts).
        settings: :class:`TransformersBackendConfig` fields (``dtype``, ``device``,
            ``batch_size``, ``trust_remote_code``) applied to ``model``'s config.
    """

    def __init__(self, model: str | Path | TransformersBackend | TransformersBackendConfig = "embedded",
                 **settings: Any) -> None:
        if isinstance(model, TransformersBackend):
            if settings:
                model.config = model.config.updated(**settings)
            backend = model
        elif isinstance(model, TransformersBackendConfig):
            backend = TransformersBackend(model.updated(**settings))
        else:
            backend = TransformersBackend(TransformersBackendConfig(model=str(model), **settings))
        backend.load()
        self.backend = backend
        self.generator: GenerationBackend = backend
        """What generates (lm-eval's generate_until, HumanEval): this backend, or one :func:`generation_backend`
        chose."""
        self.prefix_cache_enabled = True
        self._prefix_memo: dict[tuple[int, ...], object] = {}

    # ------------------------------------------------------------------ identity
    @property
    def model(self) -> Any:
        return self.backend.model

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    @property
    def resolved(self) -> Any:
        """The :class:`~seapo.models.ResolvedModel` the backend loaded."""
        return self.backend.resolved

    @property
    def bos(self) -> list[int]:
        """BOS id when the tokenizer adds one to plain text (Llama-2 style), else nothing."""
        return self.backend.bos

    @property
    def batch_size(self) -> int:
        return self.backend.config.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        # The backend's own setting, so that generation batches the same way.
        self.backend.config.batch_size = value

    @property
    def dtype_name(self) -> str:
        return str(self.model.dtype).replace("torch.", "")

    def fingerprint(self) -> str:
        """Cache key of the loaded weights and their dtype (:func:`seapo.evaluate.cache.model_key`)."""
        return model_key(self.resolved.path, self.dtype_name)

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


def llamacpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def vllm_ready() -> str | None:
    """Why vLLM cannot generate here (None: it can): the package and a CUDA GPU."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "generation_backend vllm needs vLLM: pip install 'seapo[vllm]' (a CUDA machine)"
    import torch

    if not torch.cuda.is_available():
        return "generation_backend vllm needs a CUDA GPU; none is visible (torch.cuda.is_available() is False)"
    return None


def generation_backend(lm: EvalLM, choice: str, threads: int | None = None,
                       vllm_gpu_memory: float = 0.5) -> GenerationBackend:
    """The backend of an evaluation's generations for ``choice`` (``auto``, ``transformers``, ``llamacpp``,
    ``vllm``).

    ``auto`` is the transformers backend ``lm`` already holds: measured on this project's 2-core AMX CPU
    (docs/benchmarks.md, 2026-12-03), llama.cpp is faster only at batch 1 (16.8 vs 36.9 ms per step); at
    batch 16 it is slower (84.1 vs 48.4 ms: Q4_1 has no batched kernel in an AVX2 build), and long
    few-shot prompts (MATH, BBH) ran far slower on it, so it is opt-in (``llamacpp``) until it wins
    where evaluation spends its time. llama.cpp runs the GGUF file itself (not the dequantized copy
    the scorer uses): the same weights, its own arithmetic, other greedy texts. ``vllm`` loads the same
    model (folder, Hub id, or the GGUF dequantized) into vLLM's engine beside the scorer, taking
    ``vllm_gpu_memory`` of the GPU; it is opt-in too, since its start-up (tens of seconds) outweighs a
    short evaluation's generations.
    """
    if choice in ("auto", "transformers"):
        return lm.backend
    resolved = lm.resolved
    if choice == "vllm":
        reason = vllm_ready()
        if reason:
            raise InputError(reason, field="generation_backend")
        from seapo.backends.vllm_backend import VLLMBackend, VLLMBackendConfig

        scorer = lm.backend.config
        backend = VLLMBackend(VLLMBackendConfig(model=resolved.spec, dtype=lm.backend.dtype_name,  # the scorer's
                                                gpu_memory_utilization=vllm_gpu_memory,
                                                trust_remote_code=scorer.trust_remote_code))
        backend.load()
        return backend
    if resolved.kind not in ("embedded", "gguf"):
        raise InputError(f"generation_backend llamacpp runs GGUF files; '{resolved.spec}' is a {resolved.kind} "
                         "model (use transformers, or pass the model as 'embedded' or a .gguf file)",
                         field="generation_backend")
    if not llamacpp_available():
        raise InputError("generation_backend llamacpp needs llama-cpp-python: pip install 'seapo[llamacpp]'",
                         field="generation_backend")
    from seapo.backends.llamacpp_backend import LlamaCppBackend, LlamaCppBackendConfig

    backend = LlamaCppBackend(LlamaCppBackendConfig(model=resolved.spec, batch_size=lm.batch_size,
                                                    n_threads=threads))
    backend.load()
    return backend


def _common_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    if not rows:
        return []
    first, n = rows[0], min(len(r) for r in rows)
    k = 0
    while k < n and all(r[k] == first[k] for r in rows):
        k += 1
    return list(first[:k])
