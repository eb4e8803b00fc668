"""Child servers (MLflow, vLLM, Ray): start, wait until healthy, stop by the PID we started.

A :class:`ManagedProcess` owns exactly one process group it created; ``stop()`` signals that
group only (never a name-wide kill), first SIGTERM, then SIGKILL after a grace period.

Lifetime guarantees (Linux; elsewhere only the last two hold):

* the child dies with us: it is started with ``PR_SET_PDEATHSIG`` (SIGTERM) when started from the main
  thread, and a tiny watchdog process, which holds the read end of a pipe only we write to, sees it close
  when we die (even by SIGKILL) and stops the child's whole process group (SIGTERM, then SIGKILL), so
  grandchildren such as vLLM's engine core or MLflow's workers go too;
* :meth:`ManagedProcess.wait_healthy` stops the group when the wait fails, times out or is interrupted;
* Ctrl-C (SIGINT) or SIGTERM during the wait interrupts it (raising KeyboardInterrupt), even when a
  command installed a handler that only sets a flag; that handler still runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from llmops.errors import ServerError

PR_SET_PDEATHSIG = 1

#: The watchdog: blocks reading stdin (a pipe only the parent writes to); at EOF the parent is gone, so it
#: stops the child's process group, SIGTERM first, SIGKILL after the grace period. Signals from a terminal
#: do not reach it (own session, ignored); the parent's stop() kills it by PID.
_WATCHDOG = """
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
while os.read(0, 1):
    pass
try:
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(0.2)
        os.killpg(pgid, 0)
    os.killpg(pgid, signal.SIGKILL)
except (ProcessLookupError, PermissionError):
    pass
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port`` (no HTTP round trip, so no slow answer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback health URL
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets PR_SET_PDEATHSIG (Linux, main thread only: the signal fires when the
    *thread* that forked the child ends); None where that is unavailable."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:  # runs in the child between fork and exec: no imports, no allocation-heavy work
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt (after running the handler installed
    before, e.g. one that only sets a stop flag); handlers are restored on exit. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        before = previous.get(signal.Signals(signum))
        if callable(before) and before is not signal.default_int_handler:
            before(signum, frame)
        raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class ManagedProcess:
    """A child server process with a log file, a health check and a clean stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        grace_s: float = 15.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.grace_s = grace_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None  # write end of the watchdog's pipe; closes when we die

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - prctl only, prepared before fork
            )
        except OSError as exc:
            raise ServerError(f"cannot start {self.name}: {exc}", log_path=self.log_path) from exc
        finally:
            log.close()
        try:
            self._start_watchdog(self.proc.pid)
        except OSError as exc:
            self.stop()
            raise ServerError(f"cannot start the watchdog of {self.name}: {exc}", log_path=self.log_path) from exc
        return self

    def _start_watchdog(self, pgid: int) -> None:
        read_end, self._lifeline = os.pipe()  # both non-inheritable; Popen passes read_end as stdin only
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pgid), str(self.grace_s)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, check: Callable[[], bool], timeout: float, *, interval: float = 0.5) -> None:
        """Poll ``check`` until it is true; raise ServerError if the process exits or time runs out.

        Whatever ends the wait other than success (exit, timeout, Ctrl-C, SIGTERM) stops the process group.
        """
        try:
            with interruptible():
                self._poll_healthy(check, timeout, interval)
        except BaseException:
            self.stop()
            raise

    def _poll_healthy(self, check: Callable[[], bool], timeout: float, interval: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise ServerError(
                    f"{self.name} exited with code {code} before becoming healthy\n{self.tail()}",
                    log_path=self.log_path,
                )
            if check():
                return
            time.sleep(interval)
        raise ServerError(
            f"{self.name} did not become healthy within {timeout:.0f} s\n{self.tail()}",
            log_path=self.log_path,
        )

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM the process group we started, then SIGKILL it after ``grace`` seconds (default: grace_s)."""
        if self.proc is None:
            return
        grace = self.grace_s if grace is None else grace
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        # reap grandchildren left in our group (e.g. vLLM workers)
        self._signal(signal.SIGKILL)
        self._stop_watchdog()

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill()  # by its PID, before the pipe closes: it must not signal a reused group id
            self._watchdog.wait()
            self._watchdog = None
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self if self.proc else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
