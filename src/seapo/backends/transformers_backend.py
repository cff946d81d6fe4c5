"""Local generation with Hugging Face ``transformers``: CPU or GPU, batched, left-padded."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from seapo.backends.base import (
    BackendConfig,
    Completion,
    Generation,
    GenerationBackend,
    GenerationRequest,
    Progress,
    common_prefix,
    register_backend,
)
from seapo.models.attention import without_cudnn_attention
from seapo.models.loading import DtypeName, eos_token_ids


class TransformersBackendConfig(BackendConfig):
    """Settings of the transformers backend."""

    name: Literal["transformers"] = Field("transformers", description=BackendConfig.model_fields["name"].description,
                                          json_schema_extra={"cli_name": "backend"})
    dtype: DtypeName = Field(
        "auto", description="auto (bf16 on GPUs and on CPUs with native bf16, else fp32), bf16, fp16 or fp32 "
                            "(torch's names bfloat16, float16, float32 are read as these).")
    device: str | None = Field(None, description="cuda, cuda:1 or cpu (default: CUDA when present).")
    trust_remote_code: bool = Field(False, description="Run code shipped with a Hub model. Off unless you trust "
                                                       "the model's authors.")


DECODER_VERSION = 3
"""Version of the greedy decoding loop (1: ``model.generate``; 3: rows as slots of one cache): part of
evaluation's cache keys, since in bf16 a change of batch composition can flip a near-tie."""

SHARED_PREFIX_MIN = 16
"""Prompt tokens two prompts must share before the second reuses the first's keys and values."""


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop sequence, and whether one was found."""
    cut = len(text)
    for s in stop:
        k = text.find(s)
        if k != -1:
            cut = min(cut, k)
    return text[:cut], cut < len(text)


def raw_text_bos(tokenizer: Any) -> list[int]:
    """What a raw-text prompt starts with: BOS only where the tokenizer adds one to plain text (Llama-2 style)."""
    ids = tokenizer("x")["input_ids"]
    bos = tokenizer.bos_token_id
    return [bos] if bos is not None and ids and ids[0] == bos else []


@register_backend("transformers")
class TransformersBackend(GenerationBackend):
    """Batched greedy or sampled generation with ``model.generate``.

    Requests with the same decoding settings share batches; prompts are sorted by length first,
    so a batch pads little, and results come back in input order. ``n`` samples of one prompt
    are rows of the same batch. A request that cannot be encoded, or whose batch fails and
    then fails again on its own, comes back as an error; the rest of the batch is kept.
    """

    config_class = TransformersBackendConfig
    config: TransformersBackendConfig

    def _load(self) -> None:
        from seapo.models import load_causal_lm, load_tokenizer, resolve_model

        cfg = self.config
        self.resolved = resolve_model(cfg.model)
        self.tokenizer = load_tokenizer(self.resolved, trust_remote_code=cfg.trust_remote_code)
        self.model = load_causal_lm(self.resolved, dtype=cfg.dtype, device=cfg.device,
                                    trust_remote_code=cfg.trust_remote_code)
        self._eos = eos_token_ids(self.model, self.tokenizer)
        # transformers 5.24 renamed past_key_values to cache (the old name warns); 5.2 knows only the old one.
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self.bos = raw_text_bos(self.tokenizer)

    def _close(self) -> None:
        del self.model, self.tokenizer

    def fingerprint(self) -> str:
        """The model's content (not its name) and the dtype it runs in: no model is loaded."""
        from seapo.fingerprint import stable_hash
        from seapo.models.loading import weights_identity

        cfg = self.config
        return f"transformers:{stable_hash(weights_identity(cfg.model, cfg.dtype, cfg.device))}"

    @property
    def dtype_name(self) -> str:
        self.load()
        return str(self.model.dtype).removeprefix("torch.")

    def encode(self, request: GenerationRequest) -> list[int]:
        """Token ids of a request's input: the chat with the generation prompt, or the raw text."""
        self.load()
        if request.prompt is not None:
            return self.bos + self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"]
        conversation = list(request.messages or [])
        if self.tokenizer.chat_template:
            return list(self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                           return_dict=True)["input_ids"])
        # Base models without a chat template: a plain transcript.
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in conversation) + "Assistant:"
        return self.tokenizer(text)["input_ids"]

    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        encoded: dict[int, list[int]] = {}
        limit = getattr(self.model.config, "max_position_embeddings", None)
        for i, request in enumerate(requests):
            try:
                ids = self.encode(request)
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the batch
                results[i] = Generation.failed(f"cannot encode the input: {type(exc).__name__}: {exc}")
                continue
            if limit and len(ids) + request.max_new_tokens > limit:
                results[i] = Generation.failed(f"input of {len(ids)} tokens + max_new_tokens "
                                               f"{request.max_new_tokens} exceeds the model's {limit} positions")
            else:
                encoded[i] = ids
        if progress and len(encoded) < len(requests):
            progress(len(requests) - len(encoded))
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i in encoded:
            groups.setdefault(requests[i].decoding, []).append(i)
        # Every model call below passes a mask whose shape changes call to call: on a GPU cuDNN's attention
        # would build a graph per shape (docs/gpu.md).
        with without_cudnn_attention():
            for members in groups.values():
                request = requests[members[0]]
                order = sorted(members, key=lambda i: len(encoded[i]), reverse=True)
                if self._continuous(request):
                    self._greedy_or_singles(order, encoded, request, results, progress)
                    continue
                per_batch = max(1, self.config.batch_size // request.n)
                for start in range(0, len(order), per_batch):
                    batch = order[start:start + per_batch]
                    for i, generation in zip(batch, self._batch_or_singles([encoded[i] for i in batch], request, start),
                                             strict=True):
                        results[i] = generation
                    if progress:
                        progress(len(batch))
        return [r if r is not None else Generation.failed("not generated") for r in results]

    def _batch_or_singles(self, rows: list[list[int]], request: GenerationRequest, start: int) -> list[Generation]:
        """The batch at once; if that fails, each prompt alone, so only a bad one is lost."""
        try:
            return self._run_batch(rows, request, start)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory, a kernel error on one input
            if len(rows) == 1:
                return [Generation.failed(f"generation failed: {type(exc).__name__}: {exc}")]
        out = []
        for k, row in enumerate(rows):
            try:
                out.extend(self._run_batch([row], request, start + k))
            except Exception as exc:  # noqa: BLE001
                out.append(Generation.failed(f"generation failed: {type(exc).__name__}: {exc}"))
        return out

    def _run_batch(self, prompts: list[list[int]], request: GenerationRequest, start: int) -> list[Generation]:
        if self._continuous(request):
            out: dict[int, Generation] = {}
            self._greedy(prompts, request, out.__setitem__)
            return [out[i] for i in range(len(prompts))]
        return self._generate_batch(prompts, request, start)

    def _continuous(self, request: GenerationRequest) -> bool:
        """Whether seapo's own loop runs ``request``: greedy, one completion, a model whose cache it can lay out."""
        from seapo.backends.kv_cache import supports_preallocation

        return request.temperature == 0 and request.n == 1 and supports_preallocation(self.model)

    def _left_padded(self, rows: list[list[int]]) -> tuple[Any, Any, int]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, tokens in enumerate(rows):  # left padding: every prompt ends at the same column
            ids[r, width - len(tokens):] = torch.tensor(tokens)
            mask[r, width - len(tokens):] = 1
        return ids.to(self.model.device), mask.to(self.model.device), width

    def _greedy_or_singles(self, order: list[int], encoded: dict[int, list[int]], request: GenerationRequest,
                           results: list[Generation | None], progress: Progress | None) -> None:
        """:meth:`_greedy` over ``order``; if it fails, each prompt not yet done alone, so only a bad one is lost."""
        def done(k: int, generation: Generation) -> None:
            results[order[k]] = generation
            if progress:
                progress(1)

        try:
            self._greedy([encoded[i] for i in order], request, done)
        except Exception:  # noqa: BLE001 - e.g. out of memory, a kernel error on one input
            for k, i in enumerate(order):
                if results[i] is None:
                    done(k, self._batch_or_singles([encoded[i]], request, 0)[0])

    def _greedy(self, prompts: list[list[int]], request: GenerationRequest, done: Any) -> None:
        """Greedy decoding of ``prompts`` (longest first) with continuous batching, calling ``done(k, generation)``
        as prompt ``k`` ends. It picks the tokens ``model.generate`` picks (tests/backends/test_greedy_loop.py)
        and spends less on a CPU (docs/backends.md): one preallocated KV cache whose rows are slots, prompts
        prefilled one at a time reusing shared prefixes, and up to ``batch_size`` rows running, an ended row
        (EOS, a stop sequence, the token limit) making room for the next prompt. Rows join, leave and lose
        their shared padding in place, so memory stays that of one cache however many prompts run."""
        import torch

        from seapo.backends.kv_cache import keep_rows, kv_cache_for, shift_left

        model, device = self.model, self.model.device
        slots = min(self.config.batch_size, len(prompts))
        eos = torch.tensor(sorted(self._eos), device=device)
        tail = 4 + 2 * max((len(s) for s in request.stop), default=0)  # tokens that can hold a stop sequence
        pending = deque(sorted(range(len(prompts)), key=lambda k: -len(prompts[k])))  # later prompts fit
        # Room for the longest prompt and two completions: a row lives at most max_new_tokens steps, so once the
        # padding all rows share is shifted out, max_new_tokens columns are free again.
        cache = kv_cache_for(model, len(prompts[pending[0]]) + 2 * request.max_new_tokens + 1, batch=slots)
        rows: list[int] = []  # the prompt in each row in use
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        ended: list[bool] = [False] * len(prompts)
        mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        positions = torch.zeros((0, 1), dtype=torch.long, device=device)
        logits = last = None

        def finish(k: int, hit_end: bool) -> None:
            ended[k] = True
            text, hit = cut_at_stop(self.tokenizer.decode(tokens[k], skip_special_tokens=True), request.stop)
            done(k, Generation([Completion(text, "stop" if hit or hit_end else "length", len(tokens[k]),
                                           logprobs[k] if request.logprobs else None)]))

        with torch.inference_mode():
            while pending or rows:
                dead = [b for b, k in enumerate(rows) if ended[k]]
                full = mask.shape[1] + 1 > cache.layers[0].capacity
                # Ended rows are replaced in groups (a join prefills; a removal moves rows); a full cache
                # sheds its shared padding first.
                if len(dead) >= max(1, len(rows) // 8) or len(dead) == len(rows) or full:
                    room = dead + list(range(len(rows), slots))
                    new = [pending.popleft() for _ in range(min(len(room), len(pending)))]
                    if new:
                        if not rows:  # a fresh start: the longest prompt sets the width
                            mask = mask.new_zeros((0, len(prompts[new[0]])))
                        targets, width = room[:len(new)], mask.shape[1]
                        grow = max(targets) + 1 - len(rows)  # free slots past the rows in use
                        first, last = self._prefill_into(cache, [prompts[k] for k in new], targets, width,
                                                         max(len(rows), max(targets) + 1), last)
                        if grow > 0:
                            rows += [-1] * grow  # each is one of the targets, set below
                            mask = torch.cat([mask, mask.new_zeros((grow, width))])
                            positions = torch.cat([positions, positions.new_zeros((grow, 1))])
                            logits = first.new_zeros((grow, first.shape[1])) if logits is None else torch.cat(
                                [logits, logits.new_zeros((grow, logits.shape[1]))])
                        for r, (b, k) in enumerate(zip(targets, new, strict=True)):
                            rows[b] = k
                            mask[b] = 0
                            mask[b, width - len(prompts[k]):] = 1
                            positions[b, 0] = len(prompts[k]) - 1
                            logits[b] = first[r]
                    keep = [b for b, k in enumerate(rows) if not ended[k]]
                    if len(keep) < len(rows):
                        keep_rows(cache, keep)
                        rows = [rows[b] for b in keep]
                        index = torch.tensor(keep, dtype=torch.long, device=device)
                        mask, positions, logits = mask[index], positions[index], logits[index]
                    if not rows:
                        continue
                    trim = int((mask.cumsum(-1) == 0).sum(-1).min())  # padding all rows share
                    if trim:
                        shift_left(cache, trim)
                        mask = mask[:, trim:]
                chosen = logits.argmax(-1)
                picked = chosen.tolist()
                lps = logits.log_softmax(-1).gather(-1, chosen[:, None]).squeeze(-1).tolist() if request.logprobs \
                    else None
                is_eos = torch.isin(chosen, eos).tolist()
                for b, k in enumerate(rows):
                    if ended[k]:
                        continue  # still in the batch until enough rows have ended to replace them
                    if is_eos[b]:
                        finish(k, True)
                        continue
                    tokens[k].append(picked[b])
                    if lps is not None:
                        logprobs[k].append(lps[b])
                    if request.stop and any(s in self.tokenizer.decode(tokens[k][-tail:]) for s in request.stop):
                        finish(k, True)
                    elif len(tokens[k]) >= request.max_new_tokens:
                        finish(k, False)
                if all(ended[k] for k in rows):
                    continue
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                positions = positions + 1
                out = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=positions,
                            use_cache=True, **{self._cache_arg: cache})
                logits = out.logits[:, -1].float()

    def _prefill_into(self, cache: Any, prompts: list[list[int]], rows: list[int], width: int, in_use: int,
                      last: tuple[Any, list[int]] | None = None) -> tuple[Any, tuple[Any, list[int]]]:
        """Write the keys and values of ``prompts`` into ``rows`` of ``cache``, each ending at column ``width``
        (left padding), and return each prompt's next-token logits (fp32) with the last prompt run. Each
        prompt runs on its own, so no compute goes to padding, and in sorted order, so one that starts like
        the previous prompt (few-shot exemplars, a shared instruction; ``last`` carries one across calls)
        reuses that prefix's keys and values."""
        import torch

        from seapo.backends.kv_cache import kv_cache_for, place_rows

        model = self.model
        first: list[Any] = [None] * len(prompts)
        previous, previous_ids = last if last is not None else (None, [])
        for r in sorted(range(len(prompts)), key=lambda r: prompts[r]):
            ids = prompts[r]
            own = kv_cache_for(model, len(ids))
            common = min(common_prefix(previous_ids, ids), len(ids) - 1)
            if previous is not None and common >= SHARED_PREFIX_MIN:
                for layer, source in zip(own.layers, previous.layers, strict=True):
                    layer.seed(source, common)
            else:
                common = 0
            out = model(input_ids=torch.tensor([ids[common:]], device=model.device),
                        position_ids=torch.arange(common, len(ids), device=model.device)[None],
                        use_cache=True, logits_to_keep=1, **{self._cache_arg: own})
            first[r] = out.logits[0, -1].float()
            place_rows(cache, [rows[r]], [own], width, in_use)
            previous, previous_ids = own, ids
        return torch.stack(first), (previous, previous_ids)

    def _generate_batch(self, prompts: list[list[int]], request: GenerationRequest, start: int) -> list[Generation]:
        import torch

        from seapo.backends.kv_cache import kv_cache_for

        sampling = request.temperature > 0  # greedy reaches here for n > 1 and for models _continuous refuses
        pad = self.tokenizer.pad_token_id
        outputs: list[list[Completion]] = [[] for _ in prompts]
        for first in range(0, request.n, self.config.batch_size):
            copies = min(request.n - first, self.config.batch_size)
            rows = [p for p in prompts for _ in range(copies)]
            ids, mask, width = self._left_padded(rows)
            if sampling:
                torch.manual_seed(request.seed + start * 1000 + first)
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask,
                    **{self._cache_arg: kv_cache_for(self.model, width + request.max_new_tokens)},
                    max_new_tokens=request.max_new_tokens, do_sample=sampling,
                    temperature=request.temperature if sampling else None,
                    top_p=request.top_p if sampling else None, top_k=None, eos_token_id=self._eos, pad_token_id=pad,
                    stop_strings=list(request.stop) or None, tokenizer=self.tokenizer if request.stop else None,
                    return_dict_in_generate=True, output_logits=request.logprobs,
                )
            sequences = out.sequences
            for r in range(len(rows)):
                new = sequences[r, width:].tolist()
                ended = next((k for k, t in enumerate(new) if t in self._eos), None)
                tokens = new if ended is None else new[:ended]
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                text, hit = cut_at_stop(text, request.stop)
                logprobs = None
                if request.logprobs:
                    steps = torch.stack([step[r] for step in out.logits[:len(tokens)]]) if tokens else None
                    logprobs = [] if steps is None else steps.float().log_softmax(-1).gather(
                        -1, torch.tensor(tokens, device=steps.device)[:, None]).squeeze(-1).tolist()
                outputs[r // copies].append(Completion(text, "stop" if hit or ended is not None else "length",
                                                       len(tokens), logprobs))
        return [Generation(c) for c in outputs]
