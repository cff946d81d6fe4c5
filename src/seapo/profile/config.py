"""``ProfileConfig``: the settings of ``seapo profile`` (and of ``seapo run``'s ``profile`` section)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializeAsAny, field_validator

from seapo.backends import BackendConfig, backend_config
from seapo.config import SeapoConfig, check_template
from seapo.distributed import RayConfig
from seapo.judge.llm import LLMJudgeConfig
from seapo.profile.data import DataFormat


def _default_policy() -> BackendConfig:
    # A whole chunk (32 prompts) in one batch: 200 GSM8K problems took 147 s at batch 32 against 216 s
    # at 16 on this CPU with the embedded model (docs/benchmarks.md).
    return backend_config({"name": "transformers", "batch_size": 32})


PROMPTS = {
    "gsm8k": "{question}\nSolve it step by step, then end with: The answer is <number>.",
    "truthfulqa": "{question}\nAnswer in one or two sentences.",
}
"""The question as the policy is asked it, per data format (records: the record's own chat)."""


class ProfileConfig(SeapoConfig):
    """Settings of ``seapo profile``: the policy answers each prompt, a judge labels each answer."""

    data: str | None = Field(None, description="GSM8K JSONL (question, answer with '#### N'), the TruthfulQA CSV "
                             "(or 'truthfulqa' for the Hub copy), or a seapo prepare records JSONL (its positive "
                             "is the reference; needs the LLM judge). In seapo run, unset = the run's own records.")
    format: DataFormat = Field("auto", description="How to read data: auto (by the file), gsm8k, truthfulqa or "
                               "records.")
    policy: SerializeAsAny[BackendConfig] = Field(
        default_factory=_default_policy,
        description="The policy whose errors are profiled, and its backend: a mapping with 'name' (default "
                    "transformers), 'model' (default embedded), 'batch_size' (default 32, one chunk) and the "
                    "backend's own settings.")
    max_new_tokens: int = Field(256, ge=1, description="Token limit of a policy answer.")
    temperature: float = Field(0.0, ge=0.0, description="Policy decoding temperature; 0 = greedy (default).")
    prompt_template: str | None = Field(None, description="How a question is put to the policy, with {question} "
                                        "(default: per format -- GSM8K asks for 'The answer is <number>').")
    judge: Literal["reference", "llm"] = Field(
        "reference", description="Who labels the answers: reference (model-free: final numbers, TruthfulQA's "
        "answer lists, structural checks; 'unknown' where it cannot decide) or llm (the reference judge first, "
        "then the LLM judge of section 'llm' for the types it left unknown; what records data needs).")
    llm: LLMJudgeConfig = Field(default_factory=LLMJudgeConfig, description="LLM judge settings (judge llm).")
    limit: int | None = Field(None, ge=1, description="Profile only the first N prompts.")
    seed: int = Field(0, description="Seed of the bootstrap intervals.")
    chunk_size: int = Field(32, ge=1, description="Prompts per committed chunk: at most this much work is lost to "
                            "a crash. Independent of the backend's batch size.")
    show_progress: bool | None = Field(None, description="Progress bar (default: when stderr is a terminal).")
    ray: RayConfig = Field(default_factory=RayConfig, description="Run the chunks on Ray Data (docs/ray.md): "
                           "--ray local, auto or a cluster address; each actor loads the policy and the judge "
                           "once, answers and verdicts stream back into this folder's store.")

    @field_validator("policy", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> BackendConfig:
        return backend_config(value)

    @field_validator("prompt_template")
    @classmethod
    def _placeholder(cls, value: str | None) -> str | None:
        return value if value is None else check_template(value, ("question",), "question")
