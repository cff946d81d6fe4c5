"""A training run whose numbers stop being finite stops with a clear error and saves nothing as
its result (issue 9, class 5): ``seapo train --learning-rate inf`` once saved an all-NaN adapter."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from seapo.errors import EXIT_NO_OUTPUT, TrainingDiverged
from seapo.train.trainer import train


class PoisonGradients(TrainerCallback):
    """What an overflow does: one gradient becomes NaN after clipping, just before the update of
    optimizer step ``at`` (1-based)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 == self.at:
            param = next(p for p in model.parameters() if p.requires_grad and p.grad is not None)
            param.grad.fill_(math.nan)


@pytest.mark.parametrize("algo", ["kto", "dpo"])
def test_a_non_finite_step_stops_training_and_saves_no_result(algo, pairs_subset, tiny_config):
    cfg = tiny_config(algo=algo, epochs=1, batch_size=2, per_device_batch_size=2, learning_rate=1e-3,
                      save_steps=1)
    with pytest.raises(TrainingDiverged, match=r"not finite after step 2.*nothing was saved") as err:
        train(pairs_subset(8), cfg, callbacks=[PoisonGradients(at=2)])
    assert err.value.exit_code == EXIT_NO_OUTPUT
    out = Path(cfg.output_dir)
    assert not (out / "adapter").exists() and not (out / "merged").exists() and not (out / "result.json").exists()
    # The checkpoint of the finite step 1 is kept and holds finite weights; no checkpoint of step 2.
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-1"]
    from safetensors.torch import load_file

    weights = load_file(str(out / "checkpoints" / "checkpoint-1" / "adapter_model.safetensors"))
    assert weights and all(bool(torch.isfinite(t).all()) for t in weights.values())
    for line in (out / "train_log.jsonl").read_text().splitlines():  # standard JSON: no NaN token
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c} in the log"))


def test_a_training_that_stopped_midway_is_not_read_as_a_model(pairs_subset, tiny_config):
    """The training folder is one output set: a run that diverged (or was killed) leaves it
    unpublished, and its merged model is refused until a training finishes there."""
    from seapo.errors import InputError
    from seapo.models.resolve import resolve_model

    cfg = tiny_config("set", algo="dpo", epochs=1, batch_size=2, per_device_batch_size=2, learning_rate=1e-3,
                      merge=True, save_steps=1000)
    pairs = pairs_subset(4)
    done = train(pairs, cfg)
    assert resolve_model(done.merged_dir).kind == "folder"
    manifest = json.loads((Path(cfg.output_dir) / "_complete.json").read_text())
    assert {"result.json", "adapter", "merged", "settings.json"} <= set(manifest["files"])
    with pytest.raises(TrainingDiverged):  # a second training into the folder diverges at step 1
        train(pairs, cfg, callbacks=[PoisonGradients(at=1)])
    with pytest.raises(InputError, match="incomplete train output set"):
        resolve_model(done.merged_dir)
