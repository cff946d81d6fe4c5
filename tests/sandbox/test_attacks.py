"""The attacks of issue 9 (class 1) on the sandbox, and their neighbours: each must fail.

1. escape: acting on other processes by pid (prlimit64, setpriority, sched_set*, pidfd ...), and
   running as the caller's uid;
2. forged passes: frame-walking to the launcher's helpers, early exit 0, forged status lines;
4. disk: many files / many bytes in the sandbox folder;
5. the caller's environment and long echoes in failure reasons.

(3, objects whose ``__eq__`` always says True, is in tests/evaluate/test_humaneval.py, on the
real HumanEval problems.) The victims of the pid attacks are throw-away ``sleep`` processes
started here -- never this test process -- so that a regression breaks a test, not the run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from seapo.sandbox import SandboxConfig, run_python, run_tests
from seapo.sandbox.launcher import NOBODY
from seapo.sandbox.runner import _disk_use_exceeds

GUARD = pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
SECRET = "seapo-secret-6f1c2d"


@pytest.fixture(scope="module")
def layers() -> tuple[str, ...]:
    return run_python("pass").isolation


@pytest.fixture()
def victims():
    """Processes of the caller (and, as root, of the sandbox's uid) that the program attacks."""
    # Own sessions, so that PRIO_PGRP of their pid names only them.
    procs = [subprocess.Popen(["sleep", "60"], start_new_session=True)]
    if os.geteuid() == 0:
        procs.append(subprocess.Popen(["sleep", "60"], user=NOBODY, group=NOBODY,
                                      start_new_session=True))
    yield [p.pid for p in procs]
    for p in procs:
        p.kill()
        p.wait()


def _state(pid: int) -> tuple:
    limits = Path(f"/proc/{pid}/limits").read_text()  # prlimit() may need CAP_SYS_RESOURCE here
    return (limits, os.getpriority(os.PRIO_PROCESS, pid), sorted(os.sched_getaffinity(pid)),
            os.sched_getscheduler(pid))


PID_ATTACK = """
import os, sys
sys.modules.pop('resource', None)
import resource
results = {}
for pid in PIDS:
    attempts = {
        'prlimit_cpu': lambda pid=pid: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1)),
        'prlimit_as': lambda pid=pid: resource.prlimit(pid, resource.RLIMIT_AS, (1 << 20, 1 << 20)),
        'prlimit_read': lambda pid=pid: resource.prlimit(pid, resource.RLIMIT_CPU),
        'setpriority': lambda pid=pid: os.setpriority(os.PRIO_PROCESS, pid, 19),
        'setpriority_user': lambda pid=pid: os.setpriority(os.PRIO_USER, 65534, 19),
        'setpriority_pgrp': lambda pid=pid: os.setpriority(os.PRIO_PGRP, pid, 19),
        'affinity': lambda pid=pid: os.sched_setaffinity(pid, {0}),
        'scheduler': lambda pid=pid: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)),
        'param': lambda pid=pid: os.sched_setparam(pid, os.sched_param(0)),
        'kill': lambda pid=pid: os.kill(pid, 0),
    }
    if getattr(os, 'pidfd_open', None):
        attempts['pidfd_open'] = lambda pid=pid: os.pidfd_open(pid)
    for name, attempt in attempts.items():
        try:
            attempt()
            results[f'{pid}:{name}'] = 'done'
        except BaseException as exc:
            results[f'{pid}:{name}'] = type(exc).__name__
# On itself everything stays possible.
soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
resource.prlimit(0, resource.RLIMIT_CPU, (soft, hard))
resource.prlimit(os.getpid(), resource.RLIMIT_CPU, (soft, hard))
os.setpriority(os.PRIO_PROCESS, 0, 1)
os.setpriority(os.PRIO_PROCESS, os.getpid(), 2)
os.sched_setaffinity(0, os.sched_getaffinity(0))
print('RESULTS', __import__('json').dumps(results))
"""


def _attack_results(result) -> dict:
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


@GUARD
def test_program_cannot_change_other_processes_limits_priority_or_affinity(guard, layers, victims):
    """The escape of issue 9: prlimit64 (and its kin) on another process of the caller."""
    if "seccomp" not in layers and not any(layer.startswith("uid-") for layer in layers):
        pytest.skip("neither seccomp nor a uid switch on this machine")
    before = {pid: _state(pid) for pid in victims}
    result = run_python(PID_ATTACK.replace("PIDS", repr(victims)),
                        SandboxConfig(timeout_s=10, python_guard=guard))
    assert result.status == "passed", (result.reason, result.stderr)
    results = _attack_results(result)
    assert {pid: _state(pid) for pid in victims} == before
    done = sorted(name for name, outcome in results.items() if outcome == "done")
    assert done == [], done


def test_harness_process_is_out_of_the_programs_reach(layers, victims):
    """run_tests: the program finds the tests' process (and the victims) and attacks them."""
    if "seccomp" not in layers:
        pytest.skip("no seccomp filter on this machine")
    program = (
        "import os\n"
        "def find():\n"
        "    pids = []\n"
        "    for entry in os.listdir('/proc'):\n"
        "        try:\n"
        "            if entry.isdigit() and b'seapo-harness-' in open(f'/proc/{entry}/cmdline', 'rb').read():\n"
        "                pids.append(int(entry))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return pids\n"
        # Looked for when the tests call: by then the harness process surely runs (at import time
        # it may not have started yet, which made this test flaky on a loaded machine).
        f"ATTACK = {PID_ATTACK.replace('PIDS', f'HARNESS + {victims!r}')!r}\n"
        "def add(a, b):\n"
        "    namespace = {'HARNESS': find()}\n"
        "    exec(ATTACK, namespace)\n"
        "    return [a + b, namespace['HARNESS'], namespace['results']]\n"
    )
    tests = ("def check(candidate):\n"
             "    total, harness, results = candidate(2, 3)\n"
             "    assert total == 5\n"
             "    assert harness, 'the attack did not find the harness'\n"
             "    assert [k for k, v in results.items() if v == 'done'] == [], results\n")
    before = {pid: _state(pid) for pid in victims}
    result = run_tests(program, tests, "add", SandboxConfig(timeout_s=10))
    assert result.status == "passed", (result.reason, result.stderr)
    assert {pid: _state(pid) for pid in victims} == before


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch is for root callers")
def test_root_callers_programs_run_as_nobody_in_a_folder_they_own():
    program = ("import os\n"
               "print(os.getuid(), os.getgid(), os.getgroups())\n"
               "open('mine.txt', 'w').write('x')\n"
               "print(os.stat('.').st_uid)\n")
    result = run_python(program)
    assert result.status == "passed", result.stderr
    assert result.stdout.split("\n")[:2] == [f"{NOBODY} {NOBODY} []", str(NOBODY)]
    assert f"uid-{NOBODY}" in result.isolation
    # ... and cannot write root's files even where Landlock would not stop it (kernel-only).
    victim = Path(f"/tmp/seapo-root-file-{os.getpid()}")
    victim.write_text("root's")
    try:
        attack = run_python(f"open({str(victim)!r}, 'a').write('changed')",
                            SandboxConfig(python_guard=False))
        assert attack.status == "failed" and "PermissionError" in attack.reason
        assert victim.read_text() == "root's"
    finally:
        victim.unlink()


# --------------------------------------------------------------------------- forged passes

FRAME_WALK = """
import gc, json, os, sys
found = {}
frame = sys._getframe()
while frame is not None:
    for scope in (frame.f_locals, frame.f_globals):
        for name, value in list(scope.items()):
            found.setdefault(name, value)
    frame = frame.f_back
import __main__
found.update({k: v for k, v in vars(__main__).items() if k not in found})
print('FOUND', sorted(name for name in found if not name.startswith('__')), flush=True)
for name in ('report', '_report'):
    if callable(found.get(name)):
        found[name]({'end': 'ok'})
for obj in gc.get_objects():
    if callable(obj) and getattr(obj, '__name__', '') == 'report':
        try:
            obj({'end': 'ok'})
        except Exception:
            pass
for name in ('ctypes', 'resource', '_LIBC', 'load_libc'):
    assert name not in found, f'launcher object {name} reachable'
for name in ('exit_now', '_exit'):
    if callable(found.get(name)):
        found[name](0)
"""


def test_frame_walking_finds_no_launcher_helpers_and_calling_what_it_finds_does_not_pass():
    """Issue 9: sys._getframe().f_back reached the launcher's report/exit helpers (164/164)."""
    result = run_python(FRAME_WALK + "raise SystemExit(1)\n")
    assert result.status == "failed", result
    found = next(line for line in result.stdout.splitlines() if line.startswith("FOUND"))
    assert "report" not in found and "ctypes" not in found and "_child_main" not in found


def test_frame_walking_in_run_tests_cannot_pass_wrong_code():
    program = FRAME_WALK + "def double(x):\n    return x\n"
    result = run_tests(program, "def check(candidate):\n    assert candidate(2) == 4\n", "double")
    assert result.status == "failed", result  # it calls the exit_now it finds: no answer at all
    found = next(line for line in result.stdout.splitlines() if line.startswith("FOUND"))
    assert "report" not in found and "ctypes" not in found


REAL_EXIT_0 = ("import sys\n"
               "sys.modules.pop('ctypes', None); sys.modules.pop('_ctypes', None)\n"
               "import ctypes\n"
               "sys.stdout.flush()\n"
               "ctypes.CDLL(None)._exit(0)\n")


def test_early_exit_0_is_not_a_pass():
    result = run_python("print('start')\n" + REAL_EXIT_0 + "assert False, 'never reached'\n")
    assert result.returncode == 0 and result.status == "failed", result
    tests = run_tests("def f():\n    return 1\n" + REAL_EXIT_0,
                      "def check(candidate):\n    assert candidate() == 2\n", "f")
    assert tests.status == "failed" and "ended before answering" in tests.reason, tests


FORGE_LINES = """
import os, sys, json
lines = [json.dumps(x) + '\\n' for x in ({'end': 'ok'}, {'passed': True}, ['ready'],
                                          ['ok', ['b', True]], {'layers': ['forged']})]
print(''.join(lines))  # a forged success line on stdout
for fd in range(3, 64):
    for line in lines:
        try:
            os.write(fd, line.encode())
        except OSError:
            pass
"""


def test_forged_status_lines_do_not_pass():
    result = run_python(FORGE_LINES + REAL_EXIT_0)
    assert result.returncode == 0 and result.status == "failed", result
    assert "forged" not in result.isolation
    tests = run_tests(FORGE_LINES + REAL_EXIT_0 + "def f():\n    return 1\n",
                      "def check(candidate):\n    assert candidate() == 2\n", "f")
    assert tests.status == "failed", tests


def test_patching_builtins_in_the_program_does_not_reach_the_tests():
    program = ("import builtins\n"
               "builtins.abs = lambda x: 0\n"
               "builtins.AssertionError = type('Nothing', (Exception,), {})\n"
               "import sys\n"
               "sys.settrace(lambda *a: None)\n"
               "def f(x):\n    return x + 1\n")
    result = run_tests(program, "def check(candidate):\n    assert abs(candidate(1) - 5) < 1e-6\n", "f")
    assert result.status == "failed" and result.reason == "AssertionError", result


def test_run_tests_passes_only_plain_builtin_data():
    program = ("class Any:\n"
               "    def __eq__(self, other):\n        return True\n"
               "    __hash__ = object.__hash__\n"
               "class Int(int):\n"
               "    def __eq__(self, other):\n        return True\n"
               "    __hash__ = int.__hash__\n"
               "def f(kind):\n"
               "    plain = [1, 2.5, 'a', None, True, (3,), {4: {5}}, frozenset({6}), b'x', 1j, 2 ** 5000]\n"
               "    return {'any': Any(), 'int': Int(3), 'nested': [1, (2, Any())], 'gen': (i for i in [1]),\n"
               "            'plain': plain}[kind]\n")
    tests = ("def check(candidate):\n"
             "    for kind in ('any', 'int', 'nested', 'gen'):\n"
             "        try:\n"
             "            candidate(kind)\n"
             "        except TypeError as exc:\n"
             "            assert 'not plain data' in str(exc), exc\n"
             "        else:\n"
             "            raise AssertionError(kind + ' crossed')\n"
             "    value = candidate('plain')\n"
             "    assert value == [1, 2.5, 'a', None, True, (3,), {4: {5}}, frozenset({6}), b'x', 1j, 2 ** 5000]\n"
             "    assert [type(x) for x in value[:5]] == [int, float, str, type(None), bool]\n")
    result = run_tests(program, tests, "f")
    assert result.status == "passed", (result.reason, result.stderr)


def test_run_tests_reraises_the_programs_exceptions_by_builtin_name():
    program = "def f(x):\n    raise ValueError('bad ' + 'x' * 10000)\n"
    tests = ("def check(candidate):\n"
             "    try:\n        candidate(1)\n    except ValueError as exc:\n"
             "        assert str(exc).startswith('bad x') and len(str(exc)) < 600\n"
             "    else:\n        raise AssertionError\n"
             "    candidate(2)\n")
    result = run_tests(program, tests, "f")
    assert result.status == "failed" and result.reason.startswith("ValueError: bad x")
    assert len(result.reason) <= 500


def test_run_tests_program_failures_are_reported():
    syntax = run_tests("def f(:\n", "def check(c):\n    c()\n", "f")
    assert syntax.status == "failed" and syntax.reason.startswith("SyntaxError"), syntax
    missing = run_tests("def g():\n    pass\n", "def check(c):\n    c()\n", "f")
    assert missing.status == "failed" and "no function 'f'" in missing.reason, missing
    loop = run_tests("def f():\n    while True:\n        pass\n", "def check(c):\n    c()\n", "f",
                     SandboxConfig(timeout_s=1))
    assert loop.status == "timeout"
    memory = run_tests("def f():\n    return bytearray(10 * 1024 ** 3)\n", "def check(c):\n    c()\n",
                       "f", SandboxConfig(memory_mb=512))
    assert memory.status == "killed" and "memory limit" in memory.reason, memory


# --------------------------------------------------------------------------- disk


def test_many_big_files_hit_the_disk_cap_quickly():
    """Issue 9: 180 MB written in half a second, each file under RLIMIT_FSIZE."""
    program = ("chunk = b'x' * (1 << 20)\n"
               "for i in range(40):\n"
               "    with open(f'f{i}', 'wb') as f:\n"
               "        for _ in range(8):\n"
               "            f.write(chunk)\n")
    result = run_python(program, SandboxConfig(timeout_s=20, max_disk_mb=16))
    assert result.status == "killed" and "disk limit" in result.reason, result
    assert result.duration_s < 10


def test_many_small_files_hit_the_file_count_cap():
    program = "for i in range(5000):\n    open(f'f{i}', 'w').close()\n"
    result = run_python(program, SandboxConfig(timeout_s=20, max_files=100))
    assert result.status == "killed" and "disk limit" in result.reason, result


def test_the_watchdog_measures_bytes_and_entries(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big").write_bytes(b"x" * 300_000)
    for i in range(5):
        (tmp_path / f"f{i}").touch()
    assert not _disk_use_exceeds(str(tmp_path), 10 ** 6, 10)
    assert _disk_use_exceeds(str(tmp_path), 100_000, 10)
    assert _disk_use_exceeds(str(tmp_path), 10 ** 6, 5)


def test_a_failing_programs_first_output_is_kept():
    result = run_python("for i in range(20000):\n    print('line', i)\nraise ValueError('late')\n")
    assert result.status == "failed"
    assert result.stdout_head.startswith("line 0\nline 1\n")
    assert len(result.stdout_head) <= SandboxConfig().output_tail_chars
    assert result.stdout.rstrip().endswith("line 19999")


def test_folders_are_removed_even_when_made_unreadable():
    program = ("import os\nos.mkdir('locked', 0o300)\nopen('locked/f', 'w').write('x')\n"
               "os.mkdir('empty', 0)\nprint(os.getcwd())\n")
    result = run_python(program, SandboxConfig(python_guard=False))
    assert result.status == "passed", result.stderr
    assert not Path(result.stdout.strip()).exists()


# --------------------------------------------------------------------------- environment, reasons


def test_callers_secrets_never_reach_the_program_or_the_reason(monkeypatch):
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "SEAPO_TEST_SECRET"):
        monkeypatch.setenv(name, SECRET)
    program = (
        "import os\n"
        "seen = [repr(dict(os.environ))]\n"
        "for path in (f'/proc/{os.getppid()}/environ', '/proc/1/environ', '/proc/self/environ'):\n"
        "    try:\n"
        "        seen.append(open(path, 'rb').read().decode('latin-1'))\n"
        "    except OSError as exc:\n"
        "        seen.append(type(exc).__name__)\n"
        "print(seen)\n"
        "raise ValueError(' '.join(seen))\n"
    )
    for result in (run_python(program),
                   run_tests(program + "def f():\n    pass\n", "def check(c):\n    c()\n", "f")):
        assert result.status == "failed"
        for text in (result.reason, result.stdout, result.stderr, result.stdout_head):
            assert SECRET not in text


def test_long_echoes_are_cut_in_the_reason():
    result = run_python("import sys\nraise ValueError('x' * 100000)\n")
    assert result.reason.startswith("ValueError: xxx") and len(result.reason) <= 500
    scribble = run_python("import os, json\n"
                          "for fd in range(3, 10):\n"
                          "    try:\n"
                          "        os.write(fd, (json.dumps({'error': 'y' * 100000}) + '\\n').encode())\n"
                          "    except OSError:\n"
                          "        pass\n"
                          "raise SystemExit(3)\n")
    assert scribble.status == "failed" and len(scribble.reason) <= 500


def test_timed_out_run_tests_leaves_no_process(layers):
    result = run_tests("import time\ndef f():\n    time.sleep(100)\n", "def check(c):\n    c()\n", "f",
                       SandboxConfig(timeout_s=1))
    assert result.status == "timeout" and result.duration_s < 4
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            assert int(fields[3]) != result.pid or fields[0] in ("Z", "X")
