"""``EvalConfig``: every setting of ``seapo eval`` (the CLI is generated from it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from seapo.backends.transformers_backend import TransformersBackendConfig
from seapo.config import SeapoConfig, one_of
from seapo.evaluate.tasks import SUITES, available_tasks


class EvalConfig(SeapoConfig):
    """Settings of one evaluation run (``seapo eval``).

    Scores come from one engine, lm-evaluation-harness, for every task it can express; HumanEval
    runs in seapo's sandbox. ``metrics.json`` records both per task, with lm-eval's version and the
    task's version, and ``seapo compare`` refuses runs where they differ.
    """

    suite: str = Field("paper", description=f"Named task list ({', '.join(SUITES)}; paper: TruthfulQA MC, MMLU, "
                                            "GSM8K, MATH, BBH, HumanEval). Ignored when tasks are given.")
    tasks: list[str] | None = Field(
        None, min_length=1,
        description=f"Tasks instead of the suite: {', '.join(available_tasks())}, or a task .yaml file. "
                    "'name:group' restricts a task to some groups (repeat to add more), e.g. "
                    "mmlu:anatomy,mmlu:virology,bbh:navigate.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N items of each group (MMLU subject, "
                                                      "BBH task, MATH subject) or of the task: a deterministic "
                                                      "subset, reported as such.")
    data_dir: str | None = Field(
        None, min_length=1,
        description="Folder with the local data files named in the task YAMLs (e.g. ../shared/data/eval); only "
                    "local files are read then, and a task whose files are missing is skipped with a note. None: "
                    "data from the Hugging Face Hub.")
    out: str = Field("runs/eval", min_length=1, description="Output folder: cache.sqlite plus one sub-folder per "
                                                            "evaluated model (metrics.json, predictions/).")
    run_name: str | None = Field(None, min_length=1, description="Sub-folder name for this model (default: derived "
                                                                 "from the model argument).")
    backend: TransformersBackendConfig = Field(
        default_factory=TransformersBackendConfig,
        description="The model and how it is loaded (model, dtype, device, batch size, trust_remote_code); the "
                    "model argument of evaluate() replaces backend.model. Batch size: rows per forward pass "
                    "(log-likelihood) or prompts per generate call.")
    lm_backend: Literal["seapo", "hf"] = Field(
        "seapo", description="The model under lm-eval: seapo (seapo's batched, prefix-cached scorer behind lm-eval's "
                             "LM interface; several times faster) or hf (lm-eval's own HFLM around the same model).")
    generation_backend: Literal["auto", "transformers", "llamacpp", "vllm"] = Field(
        "auto", description="Backend of the generation tasks (GSM8K, MATH, BBH, HumanEval; lm-eval's generate_until "
                            "semantics: greedy, stop sequences, max tokens): llamacpp (the model's GGUF file on CPU: "
                            "'embedded' or a .gguf; needs llama-cpp-python; opt-in: slower than transformers at batch "
                            "16 and on long few-shot prompts on the CPU measured), vllm (vLLM's engine on the GPU, "
                            "the same model; needs vllm and CUDA; its batch is vLLM's, not backend.batch_size) or "
                            "transformers (the loaded model). auto: transformers. "
                            "Log-likelihood tasks always use seapo's prefix-cached scorer; with --lm-backend hf, "
                            "lm-eval generates itself.")
    vllm_gpu_memory: float = Field(0.5, gt=0, lt=1, description="With generation_backend vllm: the fraction of the "
                                   "GPU's memory vLLM may take (its gpu_memory_utilization); the scorer's copy of "
                                   "the model shares the GPU.")
    num_samples: int | None = Field(None, ge=0, description="Sampled completions per HumanEval problem (task "
                                                            "default 20, for pass@10); 0 computes pass@1 only.")
    chunk_size: int = Field(64, ge=1, description="Items computed between two cache commits: at most this much work "
                                                  "is lost on interruption.")
    use_cache: bool = Field(True, description="Reuse per-item results cached for the same model weights and dtype, "
                                              "task protocol, engine and lm-eval version.")
    seed: int = Field(0, ge=0, description="Seed of sampled generations (HumanEval pass@k).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads during the run (default: torch's). On a "
                                                        "CPU shared with other busy processes, 1 thread can be many "
                                                        "times faster than spinning OpenMP threads.")

    @field_validator("suite")
    @classmethod
    def _known_suite(cls, value: str) -> str:
        return one_of(value, SUITES, "suite")
