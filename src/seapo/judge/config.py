"""How an injection run judges its negatives (the ``judge`` section of ``seapo inject``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from seapo.config import SeapoConfig

JudgeName = Literal["reference", "llm", "none"]


class JudgeConfig(SeapoConfig):
    """Which judge must find a negative's named error before it is accepted (docs/judge.md)."""

    name: JudgeName = Field("reference", description="reference: model-free (final answers, the structural checks "
                            "of the edit, the rules injector's perturbation record); llm: the reference judge "
                            "first, then an LLM judge for the types it leaves unknown; none: no judge (a negative "
                            "is accepted when it differs enough: not a SeaPO negative by itself).")
    accept_unknown: bool = Field(False, description="Accept a negative whose named type the judge could not decide "
                                 "(unknown). Off: only negatives the judge finds the error in are kept, so every "
                                 "accepted negative is vouched for; the others go to the fallback or rejected.jsonl.")
    llm: dict[str, Any] = Field(default_factory=dict, description="Settings of the LLM judge (name llm): its "
                                "backend and model (e.g. {backend: {model: ...}}), validated by its own config.")

    def settings(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
