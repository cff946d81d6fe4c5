"""The public API: every exported name resolves, and `import seapo` stays light."""

import subprocess
import sys

import seapo


def test_every_export_resolves():
    for name in seapo.__all__:
        assert getattr(seapo, name) is not None, name
    for name in ("GenerationBackend", "Injector", "Strategy", "register_backend", "BACKENDS", "INJECTORS",
                 "STRATEGIES", "Generation", "Injection", "InjectResult"):
        assert name in seapo.__all__


def test_import_seapo_does_not_import_torch():
    code = "import sys, seapo; seapo.InjectConfig; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"


def test_stage_functions_work_after_their_packages_are_imported(shared_data, tmp_path):
    """`import seapo.inject.rules` binds seapo.inject to the package; seapo.inject(...) must still run."""
    import pytest

    import seapo.evaluate.tasks  # noqa: F401
    import seapo.inject.rules  # noqa: F401
    import seapo.train.data  # noqa: F401
    from seapo.errors import InputError

    seapo.prepare(shared_data / "preference" / "dpo_en_demo.json", out=tmp_path / "r.jsonl", limit=5)
    result = seapo.inject(tmp_path / "r.jsonl", tmp_path / "run", seapo.InjectConfig(injector="rules"))
    # every record is a pair or a rejected item (the rules injector makes none where a type has nothing to act on)
    assert result.summary["pairs"] + result.summary["rejected_items"] == 5 and result.summary["pairs"] > 0
    with pytest.raises(InputError, match="training input not found"):
        seapo.train(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="unknown task"):
        seapo.evaluate("embedded", seapo.EvalConfig(tasks=["no-such-task"]))
