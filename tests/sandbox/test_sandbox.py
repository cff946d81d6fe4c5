"""The sandbox contains hostile programs: each is scored as failed and leaves nothing behind.

Every hostile case runs twice where it matters: with the Python reliability guard (the normal
set-up) and without it, to check that the kernel layers alone (seccomp, Landlock, network
namespace, rlimits) stop it too. The kernel-only variants skip on a machine that lacks the
layer they rely on.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from seapo.errors import ConfigError
from seapo.sandbox import SandboxConfig, SandboxError, SandboxResult, run_python

REPO = Path(__file__).resolve().parents[2]
GUARD = pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])


@pytest.fixture(scope="module")
def layers() -> tuple[str, ...]:
    """The isolation layers this machine provides."""
    return run_python("pass").isolation


def _running_in_session(sid: int) -> list[int]:
    """Pids of live (non-zombie) processes in session ``sid`` -- what a fork bomb leaves."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _assert_contained(result: SandboxResult) -> None:
    assert result.status != "passed"
    assert _running_in_session(result.pid) == [], "sandboxed processes survived the run"


def test_normal_program_passes_in_a_fresh_isolated_interpreter():
    program = (
        "import sys, os\n"
        "print('hello', sum(range(10)))\n"
        "print('isolated', sys.flags.isolated)\n"
        "print('pytest loaded', 'pytest' in sys.modules)\n"  # a fork of this process would have it
        "print('parent', os.getppid())\n"
    )
    result = run_python(program)
    assert result.status == "passed", result.stderr
    assert result.returncode == 0 and result.reason == ""
    assert "hello 45" in result.stdout
    assert "isolated 1" in result.stdout
    assert "pytest loaded False" in result.stdout
    assert f"parent {os.getpid()}" in result.stdout
    assert result.isolation[0] == "rlimits" and "python-guard" in result.isolation
    assert 0 < result.duration_s < 10


def test_failing_assert_fails_with_reason_and_traceback():
    result = run_python("x = 2\nassert x == 3, 'x is wrong'\nprint('unreachable')")
    assert result.status == "failed"
    assert result.returncode == 1
    assert result.reason == "AssertionError: x is wrong"
    assert "Traceback" in result.stderr and "unreachable" not in result.stdout


def test_syntax_error_and_system_exit_are_failures():
    assert run_python("def f(:\n  pass").status == "failed"
    # Exiting early, even with status 0, is not reaching the end of the program.
    early = run_python("import sys\nsys.exit(0)\nassert False")
    assert early.status == "failed" and early.reason.startswith("SystemExit")


@GUARD
def test_fork_bomb_is_contained(guard, layers):
    if not guard and "seccomp" not in layers and os.geteuid() == 0:
        pytest.skip("no seccomp here; as root RLIMIT_NPROC alone would not stop a fork bomb")
    result = run_python("import os\nwhile True:\n    os.fork()\n",
                        SandboxConfig(timeout_s=5, python_guard=guard))
    assert result.status == "failed", result
    assert result.duration_s < 5
    _assert_contained(result)


def test_subprocesses_and_exec_are_refused(layers):
    if "seccomp" not in layers:
        pytest.skip("no seccomp filter on this machine")
    for program in ("import subprocess\nsubprocess.run(['true'])",
                    "import os\nos.execv('/bin/true', ['true'])"):
        result = run_python(program, SandboxConfig(timeout_s=5, python_guard=False))
        assert result.status == "failed" and "PermissionError" in result.reason
        _assert_contained(result)


@GUARD
@pytest.mark.parametrize("where", ["tmp", "repo"])
def test_writes_outside_its_folder_fail(where, guard, layers):
    if not guard and not any(layer.startswith(("landlock", "uid-")) for layer in layers):
        pytest.skip("no Landlock and running as root: only the Python guard stops writes")
    folder = Path("/tmp") if where == "tmp" else REPO
    target = folder / f"seapo_escape_{uuid.uuid4().hex}"
    try:
        result = run_python(f"with open({str(target)!r}, 'w') as f:\n    f.write('escaped')\n",
                            SandboxConfig(timeout_s=5, python_guard=guard))
        assert result.status == "failed"
        assert "PermissionError" in result.reason
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_writes_inside_its_folder_work_and_the_folder_is_removed():
    program = (
        "import os, pathlib\n"
        "pathlib.Path('data.txt').write_text('kept')\n"
        "assert open('data.txt').read() == 'kept'\n"
        "print(os.getcwd())\n"
    )
    result = run_python(program)
    assert result.status == "passed", result.stderr
    folder = Path(result.stdout.strip())
    assert folder.name.startswith("seapo-sandbox-")
    assert not folder.exists()


@GUARD
def test_socket_connection_never_arrives(guard, layers):
    if not guard and not ({"netns", "seccomp"} & set(layers)):
        pytest.skip("no network namespace and no seccomp on this machine")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        program = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'escaped')\n"
        )
        result = run_python(program, SandboxConfig(timeout_s=5, python_guard=guard))
        assert result.status == "failed"
        with pytest.raises(TimeoutError):
            listener.accept()


def test_infinite_loop_times_out_within_the_limit():
    result = run_python("while True:\n    pass\n", SandboxConfig(timeout_s=1.0))
    assert result.status == "timeout"
    assert result.returncode == -9
    assert 1.0 <= result.duration_s < 3.0
    _assert_contained(result)


def test_sleeping_forever_times_out():
    result = run_python("import time\ntime.sleep(1000)\n", SandboxConfig(timeout_s=0.5))
    assert result.status == "timeout" and result.duration_s < 2.5


@pytest.mark.parametrize("program", [
    "x = bytearray(10 * 1024 ** 3)\n",  # 10 GB at once
    "chunks = []\nwhile True:\n    chunks.append(b'x' * 2 ** 25)\n",  # grows until the limit
], ids=["10GB", "growing"])
def test_memory_bomb_is_killed_quickly(program):
    result = run_python(program, SandboxConfig(timeout_s=10, memory_mb=512))
    assert result.status == "killed"
    assert "memory limit" in result.reason
    assert result.duration_s < 5


def test_output_flood_hits_the_file_size_limit():
    result = run_python("while True:\n    print('x' * 1000)\n",
                        SandboxConfig(timeout_s=10, max_file_size_mb=1))
    assert result.status == "killed" and "file size limit" in result.reason
    assert len(result.stdout) <= SandboxConfig().output_tail_chars


def test_environment_is_minimal(monkeypatch):
    monkeypatch.setenv("SEAPO_TEST_SECRET", "do-not-leak")
    result = run_python("import os\nprint(sorted(os.environ))\nassert 'SEAPO_TEST_SECRET' not in os.environ")
    assert result.status == "passed", result.stderr
    assert "do-not-leak" not in result.stdout


def test_cannot_signal_the_parent(layers):
    if "seccomp" not in layers and not any(layer.startswith("landlock-abi") and
                                           int(layer.rsplit("abi", 1)[1]) >= 6 for layer in layers):
        pytest.skip("neither seccomp nor Landlock signal scoping on this machine")
    # Signal 0 only probes: harmless even if it got through.
    result = run_python("import os\nos.kill(os.getppid(), 0)\n", SandboxConfig(python_guard=False))
    assert result.status == "failed" and "PermissionError" in result.reason


def test_parallel_runs_from_threads():
    results: list[SandboxResult | None] = [None] * 4

    def work(i: int) -> None:
        results[i] = run_python(f"print({i} * 2)")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.stdout.strip() for r in results if r and r.passed] == ["0", "2", "4", "6"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root is exempt from RLIMIT_NPROC")
def test_subprocesses_as_root_need_an_unprivileged_uid():
    # The default as root is uid 65534, where RLIMIT_NPROC holds; staying uid 0 is refused.
    with pytest.raises(SandboxError, match="run_as_uid=0"):
        run_python("pass", SandboxConfig(allow_subprocesses=True, run_as_uid=0))


def test_require_kernel_isolation_matches_what_the_machine_has(layers):
    config = SandboxConfig(require_kernel_isolation=True)
    if "seccomp" in layers and any(layer.startswith("landlock") for layer in layers):
        assert run_python("print('ok')", config).status == "passed"
    else:
        with pytest.raises(SandboxError, match="kernel isolation unavailable"):
            run_python("print('ok')", config)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxConfig(memory_mb=0)


@pytest.mark.parametrize("field,value", [
    ("timeout_s", -1), ("timeout_s", float("inf")), ("timeout_s", float("nan")), ("memory_mb", 0),
    ("max_processes", -1), ("max_file_size_mb", 0), ("max_open_files", 0), ("output_tail_chars", 0),
    ("run_as_uid", -5), ("env", {"A": ["not", "text"]}), ("no_such_setting", 1),
])
def test_sandbox_config_is_a_validated_seapo_config(field, value):
    """Every bad value is a ConfigError naming its field, from Python as from a YAML file."""
    with pytest.raises(ConfigError) as err:
        SandboxConfig(**{field: value})
    assert err.value.field is not None and err.value.field.startswith(field)
    config = SandboxConfig()
    with pytest.raises(ConfigError, match=field):
        config.updated({field: value})


def test_sandbox_config_fields_are_described_and_defaults_kept(tmp_path):
    assert all(info.description for info in SandboxConfig.model_fields.values())
    defaults = SandboxConfig()
    assert (defaults.timeout_s, defaults.memory_mb, defaults.max_processes, defaults.max_file_size_mb,
            defaults.max_open_files, defaults.output_tail_chars) == (10.0, 1024, 16, 16, 64, 4000)
    assert not defaults.allow_network and not defaults.allow_subprocesses and defaults.python_guard
    assert defaults.run_as_uid is None and defaults.python is None and defaults.env == {}
    path = tmp_path / "sandbox.yaml"
    path.write_text("timeout_s: 2\nmemory_mb: 0\n")
    with pytest.raises(ConfigError) as err:
        SandboxConfig.load(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, "memory_mb")
    assert SandboxConfig.load(path, {"memory_mb": 256}).memory_mb == 256


def test_the_launcher_imports_only_the_standard_library():
    """The sandboxed interpreter runs launcher.py as a script under -I: no seapo, no pydantic there,
    and its start-up stays short."""
    import ast
    import sys

    from seapo.sandbox.launcher import LAUNCHER

    tree = ast.parse(Path(LAUNCHER).read_text())
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top
    result = run_python("import sys\nprint(sorted(m for m in ('seapo', 'pydantic') if m in sys.modules))")
    assert result.status == "passed" and result.stdout.strip() == "[]"


def test_program_cannot_forge_the_set_up_report():
    # The launcher's status pipe is an inherited descriptor: scribbling "fatal" on it must not
    # make run_python raise, nor can it add isolation layers.
    program = (
        "import os\n"
        "for fd in sorted(int(n) for n in os.listdir('/proc/self/fd'))[3:]:\n"
        "    try:\n"
        "        os.write(fd, b'{\"fatal\": \"forged\", \"layers\": [\"forged\"]}\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "raise ValueError('after scribbling')\n"
    )
    result = run_python(program)
    assert result.status == "failed" and result.reason == "ValueError: after scribbling"
    assert "forged" not in result.isolation
