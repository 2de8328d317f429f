"""The user's command as a process tree: started, its output teed, and every process it started killed
on timeout, on cancel and when it exits."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from mlcicd.errors import UsageError

TAIL_LINES = 50
KILL_GRACE_SECONDS = 5  # GitHub kills a cancelled step ~10 s after its SIGINT: leave time to mark the run


def check_command(program: str, workdir: Path) -> None:
    """A command that cannot start is found before the MLflow run exists (no FAILED run left behind)."""
    if os.sep in program:
        if not (workdir / program).is_file():
            raise UsageError(
                "command not found",
                f"`{program}` does not exist in {workdir}. Fix `command` or `working-directory`.",
            )
        return
    if shutil.which(program) is None:
        raise UsageError(
            "command not found", f"`{program}` is not on PATH of this runner. Fix `command` or install it."
        )


def child_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] == b"Z":
                continue  # already dead, only waiting to be reaped
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return children


def descendants(pid: int) -> list[int]:
    children, stack = child_map(), [pid]
    found: list[int] = []
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def become_subreaper() -> bool:
    """Orphans of the training (a worker whose parent died) are re-parented to us, not to init,
    so they can still be found and killed. Linux only; elsewhere the process group has to do."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


class Training:
    """Runs the command, tees its output, and kills everything it started on timeout, on cancel and
    when it exits: its process group, and every descendant, including torchrun workers that sit in
    sessions of their own."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> None:
        self.argv, self.cwd, self.env, self.timeout_s = argv, cwd, env, timeout_s
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.timed_out = False
        self.cancelled = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.subreaper = become_subreaper()
        self._lock = threading.RLock()

    def _targets(self) -> list[int]:
        assert self.proc is not None
        found = descendants(os.getpid()) if self.subreaper else [self.proc.pid, *descendants(self.proc.pid)]
        return [pid for pid in found if pid != os.getpid()]

    def _signal_all(self, sig: int, pids: list[int]) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _reap(self, pids: list[int]) -> None:
        for pid in pids:
            if self.proc is not None and pid == self.proc.pid:
                continue  # Popen.wait() owns its own child's exit status
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def kill_tree(self) -> None:
        if self.proc is None:
            return
        with self._lock:
            pids = self._targets()
            self._signal_all(signal.SIGTERM, pids)
            deadline = time.monotonic() + KILL_GRACE_SECONDS
            while time.monotonic() < deadline:
                self._reap(pids)
                pids = [p for p in set(pids + self._targets()) if alive(p)]
                # alive(), not poll(): inside a signal handler that interrupted Popen.wait(), poll()
                # cannot take Popen's lock and always says "running".
                if not pids and not alive(self.proc.pid):
                    return
                time.sleep(0.1)
            self._signal_all(signal.SIGKILL, pids + self._targets())
            self._reap(pids)

    def _on_timeout(self) -> None:
        self.timed_out = True
        self.kill_tree()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.cancelled = True
        self.kill_tree()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            self.tail.append(line.rstrip("\n"))

    def run(self) -> int:
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise UsageError(
                "command not found",
                f"`{self.argv[0]}` is not on PATH of this runner. Fix `command` or install it.",
            ) from None
        except PermissionError:
            raise UsageError("command not executable", f"`{self.argv[0]}` is not executable.") from None
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        pump = threading.Thread(target=self._pump, daemon=True)
        pump.start()
        timer = threading.Timer(self.timeout_s, self._on_timeout)
        timer.daemon = True
        timer.start()
        try:
            code = self.proc.wait()
            timer.cancel()
            # Background processes the command left behind would hold the log pipe open and
            # keep running on the GPU after the step: they end with the command.
            self.kill_tree()
            pump.join(KILL_GRACE_SECONDS)
            return code
        finally:
            timer.cancel()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
