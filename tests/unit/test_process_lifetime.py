"""Child servers never outlive the command that started them, and a start can always be interrupted.

Each test runs a small Python "server" that starts a grandchild in its process group (as vLLM and MLflow
do) and records both PIDs; a "CLI" process starts it through :class:`ManagedProcess` the way
``llmops serve engine`` / ``llmops registry serve`` do (a Ctrl-C handler that only sets a flag, then a
health wait that never succeeds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.errors import ServerError
from llmops.process import ManagedProcess

#: argv: PID_FILE MODE; starts a grandchild, writes "CHILD GRANDCHILD"; MODE exit: exit 3 at once, else sleep
SERVER = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}")
os.replace(tmp, sys.argv[1])
if sys.argv[2] == "exit":
    sys.exit(3)
time.sleep(600)
"""

#: argv: FOLDER; a CLI-like parent: flag-only signal handlers (like ``stop_requested``), then a 300 s health wait
CLI = """
import signal, sys, threading
from pathlib import Path
from llmops.process import ManagedProcess
stop = threading.Event()
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: stop.set())
folder = Path(sys.argv[1])
argv = [sys.executable, "-c", sys.argv[2], str(folder / "pids"), "serve"]
proc = ManagedProcess("server", argv, folder / "server.log").start()
proc.wait_healthy(lambda: False, timeout=300, interval=0.2)
"""


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """The PIDs of ``pids`` still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not gone(p)]


def read_pids(path: Path, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the server never wrote its PIDs"
        time.sleep(0.05)
    return [int(p) for p in path.read_text().split()]


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """PIDs to SIGKILL after the test, whatever it asserted (so a failing test leaves nothing running)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def start_cli(folder: Path, leftovers: list[int]) -> tuple[subprocess.Popen[bytes], list[int]]:
    cli = subprocess.Popen([sys.executable, "-c", CLI, str(folder), SERVER], stderr=subprocess.PIPE)
    leftovers.append(cli.pid)
    pids = read_pids(folder / "pids")
    leftovers.extend(pids)
    assert not any(gone(p) for p in pids)
    return cli, pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_server_and_its_group_die_when_the_cli_is_killed_with_sigkill(tmp_path: Path, leftovers: list[int]) -> None:
    cli, pids = start_cli(tmp_path, leftovers)
    cli.kill()  # kill -9: no handler, no finally, no atexit
    cli.wait()
    assert wait_gone(pids) == [], "the server (or its grandchild) outlived the killed CLI"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_ctrl_c_during_the_health_wait_returns_promptly_and_stops_the_server(
    tmp_path: Path, leftovers: list[int]
) -> None:
    cli, pids = start_cli(tmp_path, leftovers)
    cli.send_signal(signal.SIGINT)
    try:
        _, err = cli.communicate(timeout=30)  # the wait is 300 s: Ctrl-C must end it, not the timeout
    except subprocess.TimeoutExpired:
        pytest.fail("Ctrl-C during the health wait was ignored")
    assert cli.returncode != 0 and b"KeyboardInterrupt" in err
    assert wait_gone(pids, timeout=5) == [], "Ctrl-C left the server (or its grandchild) running"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_a_failed_health_wait_leaves_no_process(tmp_path: Path, leftovers: list[int]) -> None:
    argv = [sys.executable, "-c", SERVER, str(tmp_path / "pids"), "exit"]
    proc = ManagedProcess("server", argv, tmp_path / "server.log").start()
    with pytest.raises(ServerError, match="exited with code 3 before becoming healthy"):
        try:
            proc.wait_healthy(lambda: False, timeout=120, interval=0.1)
        finally:
            leftovers.extend(read_pids(tmp_path / "pids"))
    assert wait_gone(leftovers, timeout=5) == [], "the server's grandchild survived the failed start"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_a_timed_out_health_wait_leaves_no_process(tmp_path: Path, leftovers: list[int]) -> None:
    argv = [sys.executable, "-c", SERVER, str(tmp_path / "pids"), "serve"]
    proc = ManagedProcess("server", argv, tmp_path / "server.log").start()
    leftovers.extend(read_pids(tmp_path / "pids"))
    with pytest.raises(ServerError, match="did not become healthy"):
        proc.wait_healthy(lambda: False, timeout=0.5, interval=0.1)
    assert wait_gone(leftovers, timeout=5) == []
    proc.stop()  # idempotent after a failed wait
