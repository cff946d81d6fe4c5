"""``RunConfig``: one YAML file configures every stage of ``seapo run``.

With no file, the packaged ``configs/demo.yaml`` is used: the embedded model, the packaged
demo data set, all three error types with the ``mixed`` strategy, KTO with LoRA, sized to
finish within minutes on a laptop CPU, offline.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from seapo.io import read_yaml_mapping, validate_yaml_model
from seapo.train.config import TrainConfig

CONFIG_DIR = "configs"
DEMO_CONFIG = "demo.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PrepareSection(_Section):
    """What data to read (see ``seapo prepare --help``)."""

    source: str = Field("demo", description="'demo' (packaged), a local .json/.jsonl/.parquet/.csv file, or a "
                                            "Hub data set id such as HuggingFaceH4/ultrafeedback_binarized.")
    format: str = Field("auto", description="Layout: auto, ultrafeedback, sharegpt_dpo, sharegpt_kto, alpaca, "
                                            "gsm8k, seapo or generic.")
    split: str | None = Field(None, description="Hub split (UltraFeedback default: train_prefs).")
    subset: str | None = Field(None, description="Hub configuration name.")
    limit: int | None = Field(None, description="Read at most this many rows.")
    prompt_field: str | None = Field(None, description="generic layout: prompt field.")
    response_field: str | None = Field(None, description="generic layout: response field.")


class InjectSection(_Section):
    """How negatives are made (see ``seapo inject --help``)."""

    strategy: Literal["single", "all", "mixed"] = Field("mixed", description="single, all or mixed (the paper).")
    error_types: list[str] = Field(["correctness", "logic", "hallucination"], description="Types to inject.")
    injector: Literal["llm", "rules"] = Field("llm", description="llm (the paper's method) or rules.")
    model: str = Field("embedded", description="Injector model (the paper: Qwen/Qwen2.5-7B-Instruct).")
    backend: str = Field("transformers", description="LLM backend.")
    batch_size: int = Field(16, ge=1, description="Injector generation batch.")
    max_new_tokens: int = Field(1024, ge=1, description="Token limit of a revised response (the paper: 1024).")
    dtype: str = Field("auto", description="Injector dtype: auto, bf16, fp16, fp32.")
    max_attempts: int = Field(2, ge=1, description="LLM tries per item before the fallback.")
    fallback: Literal["rules", "none"] = Field("rules", description="Stand-in for failed LLM items.")
    min_difference: float = Field(0.003, ge=0, description="Verifier: smallest normalized token difference.")
    seed: int = Field(0, description="Seed of the mixed draw and the rules injector.")


class EvalSection(_Section):
    """Optional benchmark evaluation of the base and the trained model."""

    suite: str | None = Field(None, description="Task suite to run on base and trained model (e.g. 'paper'); "
                                                "None skips evaluation.")
    tasks: list[str] | None = Field(None, description="Explicit task names instead of a suite.")
    limit: int | None = Field(None, description="Deterministic subset size per task.")
    data_dir: str | None = Field(None, description="Local evaluation data (layout of shared/data/eval); "
                                                   "default: the Hugging Face Hub.")
    engine: Literal["auto", "lm-eval", "native"] = Field(
        "auto", description="Scoring engine: lm-eval's task configs and metrics where it can run a task "
                            "(auto/lm-eval) or seapo's own implementation (native); see docs/evaluation.md.")
    num_samples: int | None = Field(None, ge=0, description="Sampled completions per HumanEval problem for "
                                                            "pass@10 (task default 20; 0: pass@1 only).")


class RunConfig(_Section):
    """Every setting of ``seapo run``."""

    out: str = Field("runs/seapo", description="Run directory.")
    prepare: PrepareSection = Field(default_factory=PrepareSection)
    inject: InjectSection = Field(default_factory=InjectSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalSection = Field(default_factory=EvalSection)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def packaged_config(name: str = DEMO_CONFIG) -> Path:
    return Path(str(resources.files("seapo.pipeline") / CONFIG_DIR / name))


def load_run_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML file (None: the packaged demo) and apply dotted ``overrides`` like ``train.epochs``."""
    path = Path(path) if path is not None else packaged_config()
    data = read_yaml_mapping(path, "run config")
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_yaml_model(RunConfig, data, path)
