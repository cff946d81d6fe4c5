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
