"""``RunConfig``: one YAML file configures every stage of ``seapo run``.

Each section is the stage's own config class (:class:`~seapo.data.prepare.PrepareConfig`,
:class:`~seapo.profile.config.ProfileConfig` (optional), :class:`~seapo.inject.pipeline.InjectConfig`,
:class:`~seapo.train.config.TrainConfig`,
:class:`~seapo.evaluate.runner.EvalConfig`), so a section reads exactly like the stage's
``--config`` file. With no file, the packaged ``configs/demo.yaml`` is used: the embedded model,
the packaged demo data set, all three error types with the ``mixed`` strategy, KTO with LoRA,
sized to finish within minutes on a laptop CPU, offline.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from seapo.config import SeapoConfig
from seapo.data.prepare import PrepareConfig
from seapo.evaluate.runner import EvalConfig
from seapo.inject.pipeline import InjectConfig
from seapo.profile.config import ProfileConfig
from seapo.train.config import TrainConfig

CONFIG_DIR = "configs"
DEMO_CONFIG = "demo.yaml"


class RunConfig(SeapoConfig):
    """Every setting of ``seapo run``. The run directory decides where each stage writes, so the
    stages' own output paths (``train.output_dir``, ``eval.out``) are set by the run."""

    out: str = Field("runs/seapo", description="Run directory.")
    force: bool = Field(False, description="Redo a stage done (or begun) in the run directory with other settings "
                                           "or inputs, and every later stage; without it such a run stops and "
                                           "names what changed.")
    ray: str | None = Field(None, description="Run the inject stage (and profile, if configured) on Ray Data: "
                            "local, auto or a cluster address (docs/ray.md); sets inject.ray.address (and "
                            "profile.ray.address). Outputs and stage keys are those of a run without it.",
                            json_schema_extra={"show_default": "none (no Ray)"})
    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="What data to read (seapo prepare).")
    profile: ProfileConfig | None = Field(None, description="Profile the policy's own errors first (seapo profile) "
                                          "and inject in proportion to them: inject then uses the profile "
                                          "strategy (or top, if it says so) fed this run's profile.json; data "
                                          "unset = the run's records. None skips it.")
    negatives: Literal["injected", "source"] = Field(
        "injected", description="injected: SeaPO's negatives, made by the inject section; source: the source data "
                                "set's own rejected responses (the vanilla baseline SeaPO is compared with, e.g. "
                                "UltraFeedback's rejected): the inject section and profiling are not used, records "
                                "without one are listed in inject/rejected.jsonl (seapo.inject.source).")
    inject: InjectConfig = Field(default_factory=InjectConfig, description="How negatives are made (seapo inject).")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Preference training (seapo train).")
    eval: EvalConfig | None = Field(None, description="Benchmark evaluation of the base and the trained model "
                                                      "(seapo eval); none skips it.")

    @field_validator("eval")
    @classmethod
    def _one_generation_backend(cls, value: EvalConfig | None) -> EvalConfig | None:
        # The trained model is a transformers folder; base and trained must generate the same way.
        if value is not None and value.generation_backend == "llamacpp":
            raise ValueError("eval.generation_backend llamacpp cannot run the trained model (a transformers "
                             "folder, not a GGUF file), and base and trained must generate with the same "
                             "backend: use auto or transformers")
        return value


    @model_validator(mode="after")
    def _profile_needs_injection(self) -> RunConfig:
        if self.negatives == "source" and self.profile is not None:
            raise ValueError("negatives: source trains on the data set's own rejected responses, so there is no "
                             "injection for a profile to guide: remove the profile section or use negatives: injected")
        return self


def packaged_config(name: str = DEMO_CONFIG) -> Path:
    return Path(str(resources.files("seapo.pipeline") / CONFIG_DIR / name))


def load_run_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML file (None: the packaged demo) and apply dotted ``overrides`` like ``train.epochs``."""
    return RunConfig.load(path if path is not None else packaged_config(), overrides, what="run config")
