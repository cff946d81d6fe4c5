"""Any OpenAI-compatible server (vLLM's ``vllm serve``, SGLang, llama.cpp's server, Ollama, hosted
APIs) through the official ``openai`` client, asynchronously.

* At most ``max_in_flight`` requests are open at once (a semaphore); each has ``timeout_s``.
* 429, 5xx, connection errors and timeouts are retried ``max_retries`` times with exponential
  backoff and jitter; a ``Retry-After`` header is honoured (the wait is at least what it says).
  The client's own retries are off, so these are the only ones.
* A 404 (the served model has another name) stops the run with an :class:`~seapo.errors.InputError`
  listing the models the server serves; 401/403 likewise (the key); any other 4xx fails that
  request only, with the server's reason.
* The API key is read from the environment variable named by ``api_key_env`` and nowhere else:
  it is no config field, so it never reaches ``config.yaml``, a fingerprint or a log, and every
  error text is redacted before it leaves this module.
* JSON-schema constrained decoding (the LLM judge's verdicts) is asked for in the dialect
  ``json_schema_mode`` names (OpenAI's ``json_schema`` response format, or the ``json_object`` +
  ``schema`` one of llama-cpp-python's server); with ``off`` (the default) the backend says it
  cannot constrain, so no caller believes an unconstrained output follows a schema.
* ``max_tokens_param`` names the chat field of the token limit: ``max_tokens`` or OpenAI's newer
  ``max_completion_tokens``.
* ``usage`` counts prompt and completion tokens from the server's ``usage`` field; with
  ``token_budget`` set, a request is not sent once the budget is spent and the batch raises
  :class:`BudgetExceeded` (nothing of that batch is kept, so a resumable run continues later).

The ``openai`` package is imported only when a backend loads (``pip install 'seapo[openai]'``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from seapo.backends.base import (
    BackendConfig,
    Completion,
    Generation,
    GenerationBackend,
    GenerationRequest,
    Progress,
    register_backend,
)
from seapo.errors import BudgetExceeded, InputError
from seapo.redact import REDACTED, redact_text


class OpenAIBackendConfig(BackendConfig):
    """Settings of the ``openai`` backend (an OpenAI-compatible server)."""

    name: Literal["openai"] = Field("openai", description=BackendConfig.model_fields["name"].description,
                                    json_schema_extra={"cli_name": "backend"})
    model: str = Field("default", min_length=1, description="The served model's name, as the server's "
                       "/v1/models lists it (vLLM: the name given to `vllm serve`; llama.cpp: any).")
    base_url: str = Field("http://127.0.0.1:8000/v1", description="The server's OpenAI API root, e.g. "
                          "http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:11434/v1 (Ollama), "
                          "https://api.openai.com/v1.")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Name of the "
                                    "environment variable holding the API key (e.g. OPENAI_API_KEY); the key "
                                    "itself is never a setting. None: no key (local servers).")
    max_in_flight: int = Field(8, ge=1, le=4096, description="Requests open at once (match the server's "
                               "parallel slots / batch size).")
    timeout_s: float = Field(600.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(4, ge=0, le=100, description="Retries of a request after a 429, a 5xx, a "
                             "connection error or a timeout (then it fails with the last reason).")
    backoff_base_s: float = Field(0.5, ge=0, description="First retry's wait; doubled on each further retry.")
    backoff_max_s: float = Field(30.0, ge=0, description="Longest backoff wait (a Retry-After header may ask "
                                 "for longer and is honoured).")
    backoff_jitter: float = Field(0.25, ge=0, le=1, description="Random extra wait, as a fraction of the "
                                  "backoff (spreads retries of many requests).")
    token_budget: int | None = Field(None, ge=1, description="Stop once this many tokens (prompt + "
                                     "completion) have been used by this run (on Ray: by all its workers together): "
                                     "requests not yet sent are not sent and the run stops resumably "
                                     "(BudgetExceeded). None: no cap.")
    json_schema_mode: Literal["off", "json_schema", "json_object"] = Field(
        "off", description="How to ask the server for JSON-schema constrained decoding (the LLM judge asks for it "
                           "where a backend supports it): json_schema sends OpenAI's response_format "
                           "{type: json_schema, json_schema: {name, schema, strict}} (OpenAI, vLLM, SGLang, "
                           "llama.cpp's llama-server, Ollama); json_object sends {type: json_object, schema} "
                           "(llama-cpp-python's server, which refuses the former); off: none, and the backend "
                           "says it cannot constrain (the judge then parses unconstrained output).")
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens", description="The chat request field that carries max_new_tokens: max_tokens (what most "
                                  "servers know; llama-cpp-python's server silently ignores the other) or "
                                  "max_completion_tokens (OpenAI's newer models refuse max_tokens). Raw-text "
                                  "requests (/completions) always send max_tokens.")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (the API root, e.g. http://127.0.0.1:8000/v1)")
        return value.rstrip("/")


_RETRY_STATUS = frozenset({408, 409, 429})


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a ``Retry-After`` (or ``retry-after-ms``) header asks for, in seconds."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when is not None else None


@register_backend("openai")
class OpenAIBackend(GenerationBackend):
    """Chat requests go to ``/chat/completions``, raw-text requests to ``/completions``."""

    config_class = OpenAIBackendConfig
    config: OpenAIBackendConfig
    # Speed, not outputs. base_url too: the same model served at another address (a restarted
    # server on a new port, another replica) answers the same, so a resumable run must not start
    # over because the address moved; the model's name is what identifies the outputs.
    # max_tokens_param only names the limit. json_schema_mode changes outputs only of requests that carry a
    # schema, and whether those are constrained is in the judge's own fingerprint (its `constrained`).
    throughput_fields = frozenset({"batch_size", "base_url", "api_key_env", "max_in_flight", "timeout_s",
                                   "max_retries", "backoff_base_s", "backoff_max_s", "backoff_jitter",
                                   "token_budget", "json_schema_mode", "max_tokens_param"})

    def __init__(self, config: BackendConfig | None = None) -> None:
        super().__init__(config)
        # Per instance: whether the server is asked to constrain is a setting of this backend, not of the class.
        self.supports_json_schema = self.config.json_schema_mode != "off"  # type: ignore[misc]
        self._key: str | None = None
        self._lock = threading.Lock()
        self.usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0}
        """Totals since construction: tokens from the server's ``usage``, requests answered, retries."""
        self.usage_elsewhere = 0
        """Tokens the run's other processes (its other Ray actors) have spent, counted against ``token_budget``
        with this backend's own: the run's worker sets it before each batch (a run-wide budget)."""

    # ------------------------------------------------------------------ lifecycle
    def _load(self) -> None:
        try:
            import openai  # noqa: F401
        except ImportError:
            raise InputError("the openai backend needs the 'openai' package: pip install 'seapo[openai]'",
                             field="backend.name") from None
        env = self.config.api_key_env
        if env is not None:
            key = os.environ.get(env)
            if not key:
                raise InputError(f"the environment variable {env} (api_key_env) is not set or empty; "
                                 "export the API key in it", field="backend.api_key_env")
            self._key = key
        else:
            self._key = None

    def _close(self) -> None:
        self._key = None

    # ------------------------------------------------------------------ helpers
    def _safe(self, text: str) -> str:
        """Text with the key (and anything credential-like) removed."""
        if self._key:
            text = text.replace(self._key, REDACTED)
        return redact_text(text)

    def _client(self) -> Any:
        from openai import AsyncOpenAI

        # max_retries=0: the retries below are the only ones (with our backoff and Retry-After).
        return AsyncOpenAI(api_key=self._key or "none", base_url=self.config.base_url,
                           timeout=self.config.timeout_s, max_retries=0)

    def _wait(self, retry: int, retry_after: float | None) -> float:
        cfg = self.config
        backoff = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** retry)
        backoff *= 1 + cfg.backoff_jitter * random.random()
        return max(backoff, retry_after) if retry_after is not None else backoff

    def _spent(self) -> int:
        return self.usage["prompt_tokens"] + self.usage["completion_tokens"] + self.usage_elsewhere

    def _count(self, usage: Any, retries: int) -> None:
        with self._lock:
            self.usage["requests"] += 1
            self.usage["retries"] += retries
            if usage is not None:
                self.usage["prompt_tokens"] += int(getattr(usage, "prompt_tokens", 0) or 0)
                self.usage["completion_tokens"] += int(getattr(usage, "completion_tokens", 0) or 0)

    async def _models(self, client: Any) -> list[str]:
        try:
            return sorted(m.id for m in (await client.models.list()).data)
        except Exception:  # noqa: BLE001 - only for the error message
            return []

    # ------------------------------------------------------------------ generation
    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(requests, progress))
        # Called from inside an event loop (a notebook): run ours in a thread of its own.
        out: list[list[Generation]] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                out.append(asyncio.run(self._run(requests, progress)))
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return out[0]

    async def agenerate(self, requests: Sequence[GenerationRequest],
                        progress: Progress | None = None) -> list[Generation]:
        """Native async generation (what :meth:`generate` runs)."""
        self.load()
        refused = self.refused(list(requests))
        todo = [r for r, f in zip(requests, refused, strict=True) if f is None]
        done = iter(await self._run(todo, progress) if todo else [])
        return [f if f is not None else next(done) for f in refused]

    async def _run(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        semaphore = asyncio.Semaphore(self.config.max_in_flight)
        budget_hit: list[str] = []
        async with self._client() as client:
            async def one(request: GenerationRequest) -> Generation:
                async with semaphore:
                    if budget_hit or (self.config.token_budget is not None and
                                      self._spent() >= self.config.token_budget):
                        budget_hit.append("x")
                        return Generation.failed("token budget spent")
                    generation = await self._request(client, request)
                if progress:
                    progress(1)
                return generation

            out = await asyncio.gather(*(one(r) for r in requests))
        if budget_hit:
            elsewhere = f" here + {self.usage_elsewhere} by the run's other workers" if self.usage_elsewhere else ""
            raise BudgetExceeded(
                f"the token budget of {self.config.token_budget} tokens is spent ({self.usage['prompt_tokens']} "
                f"prompt + {self.usage['completion_tokens']} completion tokens{elsewhere}); the requests not sent "
                "were not generated")
        return list(out)

    async def _request(self, client: Any, request: GenerationRequest) -> Generation:
        """All ``n`` completions of one request (servers that ignore ``n`` get further calls)."""
        completions: list[Completion] = []
        call = 0
        while len(completions) < request.n:
            got = await self._call(client, request, request.n - len(completions), call)
            if isinstance(got, str):
                return Generation.failed(got)
            if not got:
                return Generation.failed("the server returned no choices")
            completions.extend(got)
            call += 1
        return Generation(completions[:request.n])

    async def _call(self, client: Any, request: GenerationRequest, n: int, call: int) -> list[Completion] | str:
        import openai

        cfg = self.config
        chat = request.messages is not None
        kwargs: dict[str, Any] = {
            "model": cfg.model, (cfg.max_tokens_param if chat else "max_tokens"): request.max_new_tokens,
            "temperature": request.temperature, "top_p": request.top_p if request.temperature > 0 else 1.0,
            "seed": request.seed + call,
        }
        if n > 1:
            kwargs["n"] = n
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.logprobs:
            kwargs["logprobs"] = True if chat else 1
        if request.json_schema is not None:
            if not chat:  # /completions has no response_format in OpenAI's API; some servers would ignore it
                return "JSON-schema decoding needs a chat request on the openai backend (not raw text)"
            try:
                kwargs["response_format"] = response_format(request.json_schema, cfg.json_schema_mode)
            except ValueError as exc:
                return f"bad JSON schema: {exc}"
        retry = 0
        while True:
            reason: str
            after: float | None = None
            try:
                if chat:
                    response = await client.chat.completions.create(messages=list(request.messages), **kwargs)
                else:
                    response = await client.completions.create(prompt=request.prompt, **kwargs)
            except openai.APIStatusError as exc:
                status = exc.status_code
                message = self._safe(_message(exc))
                if status == 404:
                    models = await self._models(client)
                    listed = ", ".join(models) if models else ("nothing at /models either: is base_url the API "
                                                               "root, e.g. ending in /v1?")
                    raise InputError(f"the server at {self._safe(cfg.base_url)} answered 404 for model "
                                     f"'{cfg.model}' ({message}); it serves: {listed}",
                                     field="backend.model") from None
                if status in (401, 403):
                    where = f"the key in ${cfg.api_key_env}" if cfg.api_key_env else "no key (api_key_env unset)"
                    raise InputError(f"the server at {self._safe(cfg.base_url)} refused {where}: HTTP {status} "
                                     f"({message})", field="backend.api_key_env") from None
                if status not in _RETRY_STATUS and status < 500:
                    self._count(None, retry)
                    return f"HTTP {status} from the server: {message}"
                reason = f"HTTP {status} from the server: {message}"
                after = retry_after_seconds(exc.response.headers)
            except openai.APITimeoutError:
                reason = f"no answer within timeout_s={cfg.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                reason = self._safe(f"cannot reach the server at {cfg.base_url}: {exc.__cause__ or exc}")
            else:
                self._count(getattr(response, "usage", None), retry)
                return _completions(response, chat)
            if retry >= cfg.max_retries:
                self._count(None, retry)
                return f"{reason} (gave up after {retry + 1} tries)"
            await asyncio.sleep(self._wait(retry, after))
            retry += 1


def response_format(schema_text: str, mode: str) -> dict[str, Any]:
    """The ``response_format`` that asks a server to follow a JSON schema, in the dialect ``mode`` names
    (:attr:`OpenAIBackendConfig.json_schema_mode`); a ``ValueError`` when the schema is not JSON."""
    schema = json.loads(schema_text)  # JSONDecodeError is a ValueError
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "seapo_output", "schema": schema, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    raise ValueError(f"json_schema_mode is {mode!r}: this backend does not ask for constrained decoding")


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
    return str(getattr(exc, "message", exc))[:500]


def _finish(reason: str | None) -> Literal["stop", "length"]:
    return "length" if reason == "length" else "stop"


def _completions(response: Any, chat: bool) -> list[Completion]:
    choices = sorted(response.choices or [], key=lambda c: getattr(c, "index", 0) or 0)
    usage = getattr(response, "usage", None)
    total = int(getattr(usage, "completion_tokens", 0) or 0) if usage is not None else 0
    out = []
    for choice in choices:
        logprobs = None
        lp = getattr(choice, "logprobs", None)
        if lp is not None:
            if chat:
                logprobs = [float(t.logprob) for t in (lp.content or [])]
            else:
                logprobs = [float(x) for x in (lp.token_logprobs or []) if x is not None]
        text = (choice.message.content or "") if chat else (choice.text or "")
        tokens = len(logprobs) if logprobs else (total // len(choices) if choices else 0)
        out.append(Completion(text, _finish(choice.finish_reason), tokens, logprobs))
    return out
