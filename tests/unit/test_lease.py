"""Leases on an embedded SQLite registry: one holder at a time, a clear error naming the holder, takeover."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.errors import LeaseHeld, LeaseLost
from llmops.registry import Registry, connect
from llmops.registry.lease import Lease


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return connect(load_workspace(tmp_path, env={}))


def test_a_held_lease_refuses_others_by_name_until_released(registry: Registry) -> None:
    leases = registry.leases
    first = leases.acquire("route.triage", "alice (promote triage@production)", wait_s=0)
    with pytest.raises(LeaseHeld, match=r"alice \(promote triage@production\).*generation 1") as info:
        leases.acquire("route.triage", "bob", wait_s=0.3)
    assert info.value.holder == "alice (promote triage@production)"
    # another key is independent
    other = leases.acquire("route.billing", "bob", wait_s=0)
    other.release()
    first.check()
    first.release()
    with pytest.raises(LeaseLost):
        first.check()
    second = leases.acquire("route.triage", "bob", wait_s=0)
    assert second.generation == 2
    assert [g.generation for g in leases.generations("route.triage")] == [2]  # older generations are pruned
    second.release()
    # lease models are never listed as adapters
    assert registry.adapters.names() == []


def test_an_expired_lease_is_taken_over_and_its_holder_stops(registry: Registry) -> None:
    stale = registry.leases.acquire("route.triage", "alice", ttl_s=0.4, wait_s=0)
    time.sleep(0.5)
    fresh = registry.leases.acquire("route.triage", "bob", wait_s=0)
    assert fresh.generation == stale.generation + 1
    with pytest.raises(LeaseLost, match="expired"):
        stale.check()
    fresh.release()


def test_a_lease_whose_process_died_on_this_host_is_taken_over(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = subprocess.Popen(["true"])  # noqa: S607 - a process that has exited: its pid is free
    proc.wait()
    monkeypatch.setattr("llmops.registry.lease.os.getpid", lambda: proc.pid)
    registry.leases.acquire("route.triage", "killed promote", wait_s=0)  # never released: its process is gone
    monkeypatch.undo()
    taken = registry.leases.acquire("route.triage", "bob", wait_s=0)
    assert taken.generation == 2
    taken.release()


def test_concurrent_holders_never_overlap(registry: Registry) -> None:
    inside: list[str] = []
    overlaps: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            lease: Lease = registry.leases.acquire("route.busy", f"worker-{i}", wait_s=60)
            inside.append(str(i))
            if len(inside) > 1:
                overlaps.append(",".join(inside))
            time.sleep(0.05)
            inside.remove(str(i))
            lease.release()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not overlaps
