"""``SandboxConfig``: the limits and isolation switches of one sandboxed run."""

from __future__ import annotations

from pydantic import Field

from seapo.config import SeapoConfig


class SandboxConfig(SeapoConfig):
    """Limits and isolation switches for one :func:`~seapo.sandbox.run_python` call.

    Validated like every seapo config: a bad value raises :class:`~seapo.errors.ConfigError` (a
    ``ValueError``) naming the field.
    """

    timeout_s: float = Field(
        10.0, gt=0, allow_inf_nan=False,
        description="Wall-clock limit in seconds, interpreter start-up included. On expiry the whole process "
                    "group is killed with SIGKILL and the status is 'timeout'. The CPU-time rlimit is set to "
                    "ceil(timeout_s) + 1 as a second line of defence.")
    memory_mb: int = Field(
        1024, gt=0,
        description="Address-space limit (RLIMIT_AS) in MiB. Allocations beyond it raise MemoryError in the "
                    "child, reported as status 'killed'.")
    max_processes: int = Field(
        16, ge=0,
        description="RLIMIT_NPROC head-room: processes and threads the sandboxed uid may add on top of what it "
                    "already runs. The kernel ignores it for uid 0, which is why process creation is also "
                    "refused outright by seccomp unless allow_subprocesses is set.")
    max_file_size_mb: int = Field(
        16, gt=0,
        description="RLIMIT_FSIZE in MiB: the largest file the program may write; this also caps captured "
                    "stdout/stderr (exceeding it kills the program with SIGXFSZ).")
    max_disk_mb: int = Field(
        64, gt=0,
        description="Cap on what the program may store in its folder in all. As root the folder is a "
                    "private tmpfs of this size (writes beyond it fail with ENOSPC); otherwise, and as a "
                    "second line, the caller checks the folder every 20 ms and kills the program when it "
                    "holds more. Status 'killed' either way.")
    max_files: int = Field(
        1000, gt=0,
        description="Cap on the number of files and folders in the program's folder (tmpfs inodes as "
                    "root, the caller's watchdog otherwise).")
    max_open_files: int = Field(64, gt=0, description="RLIMIT_NOFILE: the most file descriptors the program may "
                                                      "hold open.")
    allow_network: bool = Field(
        False,
        description="Leave networking alone. When false the child gets an empty network namespace (if we are "
                    "root), Landlock denies TCP bind/connect, seccomp refuses socket() and the Python guard "
                    "replaces socket.socket.")
    allow_subprocesses: bool = Field(
        False,
        description="Let the program fork and exec. Then only RLIMIT_NPROC caps processes, which the kernel "
                    "does not enforce for uid 0, so it is refused with run_as_uid=0.")
    run_as_uid: int | None = Field(
        None, ge=0,
        description="Only matters when the caller is root. None (the default): the launcher switches the "
                    "child to uid/gid 65534 (nobody) after its set-up, keeping only CAP_DAC_READ_SEARCH so "
                    "that an interpreter in a folder nobody cannot read (a pyenv under /root) still "
                    "imports its standard library; the program then cannot signal, prlimit, ptrace or "
                    "write the files of root's processes. Another uid: switch to it before exec (the "
                    "interpreter and its standard library must be readable by it). 0: stay uid 0 with "
                    "every capability dropped (the weakest setting).")
    python: str | None = Field(
        None, description="Interpreter to run; None means sys.executable (always started with -I -B: isolated "
                          "mode, no bytecode writes).")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables on top of the minimal one (PATH, HOME and TMPDIR pointing at "
                    "the sandbox folder, LANG, single-threaded BLAS).")
    python_guard: bool = Field(
        True, description="Apply the Python-level reliability guard. Only tests that check the kernel layers on "
                          "their own should turn it off.")
    require_kernel_isolation: bool = Field(
        False, description="Refuse to run (raise SandboxError) unless both seccomp and Landlock could be "
                           "installed, instead of degrading to the remaining layers.")
    output_tail_chars: int = Field(4000, gt=0, description="How many trailing characters of stdout and of "
                                                           "stderr (and leading ones of stdout) to keep in "
                                                           "the result.")
