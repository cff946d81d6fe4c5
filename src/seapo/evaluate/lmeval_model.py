"""seapo's scorer as an lm-evaluation-harness model: lm-eval's tasks and metrics, seapo's speed.

lm-eval's own ``HFLM`` scores every (context, answer) row with the full context. :class:`SeapoLM`
answers the same requests with seapo's machinery: ``loglikelihood`` with
:class:`~seapo.evaluate.lm.EvalLM`, which encodes each task's shared few-shot prefix once and
reuses its KV cache (TruthfulQA's primer, an MMLU subject's dev examples), and ``generate_until``
with the ``generate`` of :attr:`EvalLM.generator <seapo.evaluate.lm.EvalLM.generator>` (the transformers
backend, or llama.cpp for a GGUF model: raw-text requests, greedy, cut at the stop sequences). The
numbers are lm-eval's: it builds the prompts, parses the answers and computes the metrics.

Usable on its own with any lm-eval task (importing this module registers it as ``seapo``)::

    import lm_eval
    import seapo.evaluate.lmeval_model  # noqa: F401
    lm_eval.simple_evaluate(model="seapo", model_args={"model": "embedded"}, tasks=["truthfulqa_mc2"])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lm_eval.models  # noqa: F401 - lm-eval's own models first (see below)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from seapo.backends.base import GenerationRequest
from seapo.evaluate.lm import EvalLM, LoglikRequest

Progress = Callable[[float], None]

# lm-eval fills its model registry lazily, only while the registry is empty: registering "seapo" into
# an empty one would hide "hf" and every other built-in model from simple_evaluate(model=...).

@register_model("seapo")
class SeapoLM(LM):
    """An lm-eval ``LM`` backed by :class:`~seapo.evaluate.lm.EvalLM` and its transformers backend.

    Args:
        model: a loaded :class:`EvalLM`, or anything :func:`seapo.models.resolve_model` accepts.
        progress: called with the fraction of the current call's requests just finished
            (seapo's progress bars); lm-eval's own tqdm bars are separate.
        dtype, device, batch_size, trust_remote_code: how to load ``model`` when it is not loaded
            yet (the transformers backend's settings; ``float32``-style names are accepted);
            ``batch_size="auto"`` (lm-eval's option) means 16.
        max_batch_size: accepted for lm-eval's ``simple_evaluate``, which always passes it; unused.
        seed: seed of sampled generations (lm-eval's requests carry none).

    A generation the backend could not produce (an input longer than the model's context, an
    error on the device) is answered with "" -- lm-eval then scores it wrong -- and its reason is
    kept in :attr:`errors` under ``(lm-eval task name, document id)``.
    """

    def __init__(self, model: EvalLM | str, progress: Progress | None = None, *, dtype: str = "auto",
                 device: str | None = None, batch_size: int | str = 16, trust_remote_code: bool = False,
                 max_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        if isinstance(model, EvalLM):
            self.lm = model
        else:
            size = int(batch_size) if str(batch_size).isdigit() else 16
            self.lm = EvalLM(str(model), dtype=dtype, device=device, batch_size=size,
                             trust_remote_code=trust_remote_code)
        self.progress = progress
        self.seed = seed
        self.errors: dict[tuple[str, int], str] = {}

    @property
    def tokenizer_name(self) -> str:
        return self.lm.tokenizer.name_or_path.replace("/", "__")

    def _advance(self, total: int) -> Callable[[int], None] | None:
        if self.progress is None or total == 0:
            return None
        return lambda n: self.progress(n / total)  # type: ignore[misc]

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        # One group per lm-eval task: a task's requests share its few-shot prefix, whose KV cache
        # EvalLM computes once (an MMLU subject's 5 dev examples, TruthfulQA's primer).
        reqs = [LoglikRequest(*r.args) for r in requests]
        groups = [str(getattr(r, "task_name", "") or "") for r in requests]
        return self.lm.loglikelihood_greedy(reqs, groups=groups, progress=self._advance(len(reqs)))

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError("perplexity (loglikelihood_rolling) tasks are not supported by seapo's scorer; "
                                  "use lm-eval's HFLM for them (seapo eval --lm-backend hf)")

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        # The backend batches requests that share decoding settings itself.
        generations = self.lm.generator.generate([self.request(*r.args) for r in requests],
                                               progress=self._advance(len(requests)))
        out = []
        for r, generation in zip(requests, generations, strict=True):
            if not generation.ok:
                self.errors[(str(getattr(r, "task_name", "")), int(getattr(r, "doc_id", -1)))] = str(generation.error)
            self.cache_hook.add_partial("generate_until", r.args, generation.text)
            out.append(generation.text)
        return out

    def request(self, context: str, settings: dict[str, Any]) -> GenerationRequest:
        """The backend request for one of lm-eval's ``(context, generation kwargs)`` pairs."""
        settings = dict(settings)
        until = settings.pop("until", None) or []
        sampling = bool(settings.pop("do_sample", False))
        # transformers' default temperature is 1.0 when sampling is asked without one.
        temperature = float(settings.pop("temperature", 1.0) or 0.0) if sampling else 0.0
        return GenerationRequest(prompt=context, max_new_tokens=int(settings.pop("max_gen_toks", 256)),
                                 stop=(until,) if isinstance(until, str) else tuple(until), temperature=temperature,
                                 top_p=float(settings.pop("top_p", 1.0) or 1.0), seed=self.seed)
