"""`seapo run` with a `profile` section: prepare -> profile -> inject (profile strategy) -> train."""

import json

import pytest

from seapo.backends import BackendConfig, Completion, Generation, GenerationBackend, register_backend
from seapo.errors import InputError
from seapo.pipeline.config import load_run_config
from seapo.pipeline.run import run


class FixedAnswerConfig(BackendConfig):
    name: str = "fixed-answer"
    answer: str = "Adding it all up, the answer is 3."


@register_backend("fixed-answer")
class FixedAnswer(GenerationBackend):
    """A policy that answers every question the same way (fast, and wrong on almost every GSM8K problem)."""

    config_class = FixedAnswerConfig

    def _load(self):
        pass

    def _generate(self, requests, progress):
        return [Generation([Completion(self.config.answer, "stop", 9)]) for _ in requests]


def _config(tmp_path, tiny_model, shared_data, **extra):
    return load_run_config(None, {
        "out": str(tmp_path / "run"), "prepare.source": str(shared_data / "source" / "gsm8k" / "train.jsonl"),
        "prepare.limit": 40, "inject.injector": "rules", "train.model": str(tiny_model), "train.max_steps": 1,
        "train.batch_size": 4, "train.max_length": 256,
        "profile": {"data": str(shared_data / "source" / "gsm8k" / "train.jsonl"), "limit": 30,
                    "policy": {"name": "fixed-answer"}},
        **extra})


@pytest.mark.slow  # a whole run with training: over a minute of CPU on the shared machine
def test_run_profiles_then_injects_in_proportion_and_reports_it(tmp_path, tiny_model, shared_data):
    config = _config(tmp_path, tiny_model, shared_data)
    result = run(config)
    stages = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(stages) == ["prepare", "profile", "inject", "train"]
    profile = stages["profile"]["profile"]
    assert profile["answers"] == 30 and profile["counts"]["correctness"] == profile["erroneous"] > 25
    summary = stages["inject"]["summary"]
    assert summary["strategy"] == "profile"
    assert summary["plan"]["target"] == {"correctness": 0.9, "hallucination": 0.05, "logic": 0.05}
    assert summary["plan"]["planned"]["correctness"] > 25
    assert stages["inject"]["inputs"]["files"]["profile/profile.json"]  # the profile is part of inject's key
    report = result.report.read_text()
    assert "## Error profile of the policy" in report and "| correctness |" in report and "bootstrap" in report
    # Unchanged: every stage is skipped. A changed profile setting stops the run, naming it.
    again = run(config)
    assert again.stages["profile"]["wall_time_s"] == stages["profile"]["wall_time_s"]
    with pytest.raises(InputError, match="profile.limit: 30 -> 20"):
        run(config.updated({"profile.limit": 20}))
