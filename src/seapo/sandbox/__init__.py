"""Run untrusted (model-written) Python in a separate, locked-down interpreter.

A general safety component: HumanEval scoring (:mod:`seapo.evaluate.humaneval`) is its user
today, anything else that must execute code it did not write can use it the same way::

    from seapo.sandbox import SandboxConfig, run_python

    result = run_python("print(1 + 1)", SandboxConfig(timeout_s=5, memory_mb=512))
    result.status, result.reason, result.isolation

    # trusted tests against an untrusted function, in two processes (HumanEval's way):
    run_tests("def f(x):\n    return x + 1\n", "def check(c):\n    assert c(1) == 2\n", "f")

Layout: :mod:`~seapo.sandbox.config` (the limits), :mod:`~seapo.sandbox.runner` (the caller's
side: start, time out, kill, classify) and :mod:`~seapo.sandbox.launcher` (the script the
sandboxed interpreter runs: kernel layers and the Python guard, then the program). What is and
is not isolated: docs/sandbox.md.
"""

from seapo.sandbox.config import SandboxConfig
from seapo.sandbox.runner import SandboxError, SandboxResult, run_python, run_tests

__all__ = ["SandboxConfig", "SandboxError", "SandboxResult", "run_python", "run_tests"]
