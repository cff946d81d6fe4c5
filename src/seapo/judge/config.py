"""How an injection run judges its negatives (the ``judge`` section of ``seapo inject``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

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
    model: str | None = Field(None, description="The LLM judge's model (short for llm.backend.model): 'embedded', "
                              "a folder, a .gguf file, a Hub id or a served model's name. Giving it with the "
                              "default judge (reference) selects the llm judge, which runs the reference judge "
                              "first.")

    @model_validator(mode="before")
    @classmethod
    def _model_shorthand(cls, data: Any) -> Any:
        # One place turns the shorthand into the section the LLM judge reads, so the CLI's
        # --judge-model, YAML and Python agree; a contradiction is refused, never resolved silently.
        if not isinstance(data, dict) or not data.get("model"):
            return data
        data = dict(data)
        model, name = data["model"], data.get("name", "reference")
        if name == "none":
            raise ValueError("judge.model names the LLM judge's model, but judge.name is 'none' (no judge); "
                             "use judge.name=llm")
        data["name"] = "llm"
        llm = dict(data.get("llm") or {})
        backend = llm.get("backend")
        backend = dict(backend) if isinstance(backend, dict) else (backend.model_dump() if backend else {})
        if backend.get("model") not in (None, model):
            raise ValueError(f"judge.model is {model!r} but judge.llm.backend.model is {backend['model']!r}; "
                             "give one of them")
        backend["model"] = model
        llm["backend"] = backend
        data["llm"] = llm
        return data

    def settings(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
