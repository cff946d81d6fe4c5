"""The LLM judge: a model reads the question, the reference and the response and answers a strict
JSON verdict (:mod:`seapo.judge.prompts`), through any :class:`~seapo.backends.GenerationBackend`.

Each batch is one ``generate`` call. Outputs that fail the strict parser are retried (only those
items, again one call per retry) with sampling at ``retry_temperature``, seeded by the attempt, so
a retry is another answer and a rerun the same one. After the retries an item's verdict is
``unknown`` for every type, with every raw text and failure kind kept in ``Verdict.details``.
Where the backend supports constrained decoding (``supports_json_schema``) the requests carry the
verdict's JSON schema; the transformers backend does not, so its outputs are parsed as they come.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field, SerializeAsAny, field_validator

from seapo.backends import BackendConfig, GenerationBackend, GenerationRequest, backend_config, make_backend
from seapo.config import SeapoConfig, check_template
from seapo.fingerprint import stable_hash
from seapo.inject.error_types import ALL_ERROR_TYPES
from seapo.inject.llm import _default_backend
from seapo.judge.base import JUDGES, Judge, JudgeItem, Verdict, verdict
from seapo.judge.prompts import (
    JUDGE_PROMPT,
    PROMPT_VERSION,
    VERDICT_SCHEMA,
    ParsedVerdict,
    ParseFailure,
    build_judge_prompt,
    parse_verdict,
)


class LLMJudgeConfig(SeapoConfig):
    """Settings of :class:`LLMJudge` (the backend section reads like the LLM injector's)."""

    backend: SerializeAsAny[BackendConfig] = Field(
        default_factory=_default_backend,
        description="The judge model's backend: a mapping with 'name' (default transformers), 'model' (default "
                    "the embedded model, a poor judge: use a stronger one), 'batch_size' and the backend's own "
                    "settings.")
    max_new_tokens: int = Field(160, ge=8, description="Token limit of a verdict (the JSON object and a short "
                                                       "rationale).")
    temperature: float = Field(0.0, ge=0.0, description="First attempt's temperature; 0 = greedy.")
    retries: int = Field(2, ge=0, description="Further attempts on an output the strict parser refuses (sampled "
                                              "at retry_temperature, seeded by the attempt).")
    retry_temperature: float = Field(0.7, gt=0.0, description="Temperature of the retries (greedy would repeat "
                                                              "the refused output).")
    constrained: bool = Field(True, description="Ask for JSON-schema constrained decoding where the backend "
                                                "supports it (ignored where it does not).")
    prompt_template: str = Field(JUDGE_PROMPT, description="Instruction with the placeholders {definitions}, "
                                 "{question}, {reference_block} and {response} (default: seapo's judge prompt).")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> BackendConfig:
        return backend_config(value)

    @field_validator("prompt_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return check_template(value, ("definitions", "question", "reference_block", "response"), "response",
                              "the text to judge")


@JUDGES.register("llm")
class LLMJudge(Judge):
    """Asks a model for a strict JSON verdict per item; see the module docstring."""

    config_class = LLMJudgeConfig
    config: LLMJudgeConfig

    def __init__(self, config: LLMJudgeConfig | None = None, backend: GenerationBackend | None = None) -> None:
        super().__init__(config)
        self.backend = backend or make_backend(self.config.backend)

    @property
    def constrained(self) -> bool:
        return self.config.constrained and self.backend.supports_json_schema

    def fingerprint(self) -> str:
        cfg = self.config
        settings = stable_hash([PROMPT_VERSION, cfg.max_new_tokens, cfg.temperature, cfg.retries,
                                cfg.retry_temperature, self.constrained, cfg.prompt_template])
        return f"llm|{self.backend.fingerprint()}|{settings}"

    def load(self) -> None:
        self.backend.load()

    def close(self) -> None:
        self.backend.close()

    def _request(self, item: JudgeItem, attempt: int) -> GenerationRequest:
        cfg = self.config
        prompt = build_judge_prompt(item.question, item.response, item.reference, item.correct_answers,
                                    item.incorrect_answers, cfg.prompt_template)
        return GenerationRequest(messages=[{"role": "user", "content": prompt}], max_new_tokens=cfg.max_new_tokens,
                                 temperature=cfg.temperature if attempt == 0 else cfg.retry_temperature,
                                 seed=attempt, json_schema=json.dumps(VERDICT_SCHEMA) if self.constrained else None)

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        raws: list[list[str]] = [[] for _ in items]
        failures: list[list[str]] = [[] for _ in items]
        parsed: dict[int, ParsedVerdict] = {}
        for attempt in range(self.config.retries + 1):
            pending = [i for i in range(len(items)) if i not in parsed]
            if not pending:
                break
            outputs = self.backend.generate([self._request(items[i], attempt) for i in pending])
            for i, out in zip(pending, outputs, strict=True):
                raws[i].append(out.text)
                if not out.ok:
                    failures[i].append("backend_error")
                    continue
                result = parse_verdict(out.text)
                if isinstance(result, ParseFailure):
                    failures[i].append(result.kind)
                else:
                    parsed[i] = result
        return [self._verdict(parsed.get(i), raws[i], failures[i]) for i in range(len(items))]

    def _verdict(self, parsed: ParsedVerdict | None, raws: list[str], failures: list[str]) -> Verdict:
        details: dict[str, Any] = {"attempts": len(raws), "failures": dict(Counter(failures)),
                                   "constrained": self.constrained}
        if parsed is None:
            v = verdict(self.name, f"no valid verdict after {len(raws)} attempt(s): "
                                   f"{', '.join(failures)}", raws)
            v.details = {**details, "parsed": False}
            return v
        found = {t.value: "unknown" if parsed.values[t] is None else "present" if parsed.values[t] else "absent"
                 for t in ALL_ERROR_TYPES}
        v = verdict(self.name, parsed.rationale, raws[-1] if len(raws) == 1 else raws, **found)
        v.details = {**details, "parsed": True}
        return v
