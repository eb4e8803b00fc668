"""Leases: one writer at a time per route (or prompt), atomic on every MLflow backend (SQLite, PostgreSQL, server).

MLflow has no compare-and-set on aliases, but creating a registered model is atomic: names are unique
and the loser of a race gets ``RESOURCE_ALREADY_EXISTS``. A lease on key ``K`` (``route.NAME``,
``prompt.NAME``) is therefore a registered model ``llmops.lease.K.N`` tagged ``llmops.kind=lease``,
where ``N`` is the fencing generation. Its tags name the holder (actor, host, pid), a random token
and ``expires_at`` (epoch seconds).

* **acquire**: find the highest generation ``N``; when it is released, expired, or held by a process of
  this host that no longer exists (a killed ``llmops promote``), create ``N + 1`` — only one contender
  can — and delete the older generations. Otherwise poll (jittered, ~0.2-0.5 s) until ``wait_s`` runs
  out, then raise :class:`~llmops.errors.LeaseHeld` naming the holder and when the lease expires.
* **check** (before every move): the lease must not be (nearly) expired by this process's clock and
  its model must still exist with our token; else :class:`~llmops.errors.LeaseLost`.
* **renew**: a long-running holder (a rollout controller) checks the lease is still its own, then moves
  ``expires_at`` forward; a holder that stops renewing loses the lease when it expires.
* **release**: tag the generation ``released``.

Fencing is by checking before each write, so a holder paused for longer than the lease (default 60 s)
between its check and its write could still write late; promotions take a few seconds, far below that.
Lease models carry ``llmops.kind=lease``, so listings that filter by kind (``adapters list``) skip them.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from llmops.errors import LeaseHeld, LeaseLost, RegistryError
from llmops.registry import tags
from llmops.registry.backend import Store

PREFIX = "llmops.lease."
DEFAULT_TTL_S = 60.0
DEFAULT_WAIT_S = 30.0
#: a holder stops writing when less than this is left of its lease (clock skew between machines)
SAFETY_S = 5.0


def lease_model(key: str, generation: int) -> str:
    return f"{PREFIX}{key}.{generation}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LeaseInfo:
    """One generation of a lease as stored in the registry."""

    key: str
    generation: int
    holder: str
    host: str
    pid: int
    token: str
    expires_at: float
    released: bool

    def free(self, now: float) -> bool:
        """True when a contender may take over: released, expired, or its process on this host is gone."""
        if self.released or now >= self.expires_at:
            return True
        return self.host == socket.gethostname() and self.pid > 0 and not _alive(self.pid)

    def describe(self) -> str:
        return f"{self.holder} (pid {self.pid} on {self.host}, generation {self.generation})"


def _info(key: str, generation: int, model: Any) -> LeaseInfo:
    found = dict(model.tags or {})
    return LeaseInfo(
        key=key,
        generation=generation,
        holder=found.get(tags.LEASE_HOLDER, "?"),
        host=found.get(tags.LEASE_HOST, ""),
        pid=int(found.get(tags.LEASE_PID) or 0),
        token=found.get(tags.LEASE_TOKEN, ""),
        expires_at=float(found.get(tags.LEASE_EXPIRES_AT) or 0),
        released=found.get(tags.LEASE_RELEASED) == "true",
    )


class Lease:
    """A held lease; :meth:`check` before each write, :meth:`release` when done."""

    def __init__(self, store: LeaseStore, info: LeaseInfo, ttl_s: float) -> None:
        self._store = store
        self.info = info
        self.ttl_s = ttl_s

    @property
    def generation(self) -> int:
        return self.info.generation

    def check(self) -> None:
        """LeaseLost when this lease expired (or nearly) or another holder replaced it."""
        left = self.info.expires_at - time.time()
        if left < min(SAFETY_S, self.ttl_s / 4):
            raise LeaseLost(f"lease on {self.info.key} expired (generation {self.generation}); nothing more is moved")
        current = self._store.read(self.info.key, self.generation)
        if current is None or current.token != self.info.token or current.released:
            raise LeaseLost(f"lease on {self.info.key} (generation {self.generation}) was taken over")

    def renew(self) -> None:
        """Extend this lease by its TTL from now (a long-running holder, e.g. a rollout controller, calls it
        before every write); LeaseLost when it was lost meanwhile."""
        self.check()
        self.info = self._store.extend(self.info, time.time() + self.ttl_s)

    def release(self) -> None:
        self._store.release(self)


class LeaseStore(Store):
    """Acquire, read and release leases (see the module docstring)."""

    def generations(self, key: str) -> list[LeaseInfo]:
        """Every stored generation of ``key``'s lease, lowest first."""
        prefix = f"{PREFIX}{key}."
        with self._backend.call(f"cannot read the lease on {key}"):
            found = self._client.search_registered_models(f"name LIKE '{prefix}%'", max_results=1000)
        out = []
        for model in found:
            rest = model.name.removeprefix(prefix)
            is_lease = (model.tags or {}).get(tags.KIND) == tags.KIND_LEASE
            if model.name.startswith(prefix) and rest.isdigit() and is_lease:
                out.append(_info(key, int(rest), model))
        return sorted(out, key=lambda i: i.generation)

    def read(self, key: str, generation: int) -> LeaseInfo | None:
        name = lease_model(key, generation)
        model = self._backend.lookup(f"cannot read lease {name}", lambda: self._client.get_registered_model(name))
        if model is None or (model.tags or {}).get(tags.KIND) != tags.KIND_LEASE:
            return None
        return _info(key, generation, model)

    def try_acquire(self, key: str, holder: str, ttl_s: float = DEFAULT_TTL_S) -> Lease | LeaseInfo:
        """The lease, or the live generation that holds it now."""
        from mlflow.exceptions import MlflowException

        found = self.generations(key)
        now = time.time()
        if found and not found[-1].free(now):
            return found[-1]
        generation = found[-1].generation + 1 if found else 1
        info = LeaseInfo(key, generation, holder, socket.gethostname(), os.getpid(), uuid.uuid4().hex,
                         now + ttl_s, released=False)  # fmt: skip
        values = {
            tags.KIND: tags.KIND_LEASE,
            tags.LEASE_HOLDER: info.holder,
            tags.LEASE_HOST: info.host,
            tags.LEASE_PID: str(info.pid),
            tags.LEASE_TOKEN: info.token,
            tags.LEASE_EXPIRES_AT: f"{info.expires_at:.3f}",
        }
        name = lease_model(key, generation)
        try:
            self._client.create_registered_model(name, tags=values, description=f"llmops lease on {key}")
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                self._backend.fail(f"cannot take the lease on {key}", exc)
            winner = self.read(key, generation)
            if winner is not None:
                return winner
            if self._backend.lookup(f"cannot read {name}", partial(self._client.get_registered_model, name)):
                raise LeaseHeld(f"cannot take the lease on {key}: a model of another kind is named {name}") from exc
            # the winner's generation is already superseded and pruned: the next attempt looks again
            return replace(info, holder="a concurrent promotion", released=True)
        except OSError as exc:
            self._backend.fail(f"cannot take the lease on {key}", exc)
        self._prune(key, [old.generation for old in found])
        return Lease(self, info, ttl_s)

    def _prune(self, key: str, generations: list[int]) -> None:
        """Delete superseded generations: housekeeping only, so a failure just leaves them for the next winner."""
        for generation in generations:
            name = lease_model(key, generation)
            try:
                self._backend.lookup(f"cannot delete {name}", partial(self._client.delete_registered_model, name))
            except RegistryError:
                return

    def acquire(self, key: str, holder: str, *, ttl_s: float = DEFAULT_TTL_S, wait_s: float = DEFAULT_WAIT_S) -> Lease:
        """Take the lease on ``key``, waiting up to ``wait_s``; LeaseHeld names the holder when it is busy."""
        deadline = time.monotonic() + max(wait_s, 0.0)
        while True:
            got = self.try_acquire(key, holder, ttl_s)
            if isinstance(got, Lease):
                return got
            if time.monotonic() >= deadline:
                left = max(got.expires_at - time.time(), 0.0)
                raise LeaseHeld(
                    f"{key} is being changed by {got.describe()}; its lease expires in {left:.0f} s. "
                    "Retry later or wait longer (--wait SECONDS)",
                    holder=got.holder,
                )
            time.sleep(min(random.uniform(0.2, 0.5), max(deadline - time.monotonic(), 0.01)))  # noqa: S311

    def extend(self, info: LeaseInfo, expires_at: float) -> LeaseInfo:
        """``info``'s generation with its expiry moved to ``expires_at`` (the holder checked its token first)."""
        name = lease_model(info.key, info.generation)
        with self._backend.call(f"cannot renew the lease on {info.key}"):
            self._client.set_registered_model_tag(name, tags.LEASE_EXPIRES_AT, f"{expires_at:.3f}")
        return replace(info, expires_at=expires_at)

    def release(self, lease: Lease) -> None:
        name = lease_model(lease.info.key, lease.generation)
        # a lease taken over (and deleted) by another holder is simply gone
        self._backend.lookup(
            f"cannot release the lease on {lease.info.key}",
            lambda: self._client.set_registered_model_tag(name, tags.LEASE_RELEASED, "true"),
        )

    @contextmanager
    def held(
        self, key: str, holder: str, *, ttl_s: float = DEFAULT_TTL_S, wait_s: float = DEFAULT_WAIT_S
    ) -> Iterator[Lease]:
        """``with leases.held("route.x", who) as lease:`` — released on exit (a kill leaves it to expire)."""
        lease = self.acquire(key, holder, ttl_s=ttl_s, wait_s=wait_s)
        try:
            yield lease
        finally:
            lease.release()
