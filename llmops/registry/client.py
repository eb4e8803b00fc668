"""The registry façade: one object per workspace registry, holding the typed stores.

``connect(ws)`` returns a :class:`Registry` for a workspace's MLflow registry (an embedded SQLite file
or an MLflow server). Services talk to its stores (``registry.prompts``, ``.adapters``, ``.pointers``, ``.routes``,
``.audit``, ``.leases``, ``.evals``, ``.models``, ``.runs``, ``.monitoring``, ``.triggers``, ``.datasets``) and never to an ``MlflowClient``: this package is the only
one that imports mlflow (see :mod:`llmops.registry.backend` for the error policy).
"""

from __future__ import annotations

from functools import cached_property

from llmops.config.workspace import Workspace
from llmops.registry.adapters import AdapterStore
from llmops.registry.audit import AuditStore
from llmops.registry.backend import Backend, check_reachable
from llmops.registry.datasets import DatasetStore
from llmops.registry.evals import EvalRecordStore
from llmops.registry.lease import LeaseStore
from llmops.registry.models import BaseModelStore
from llmops.registry.monitoring import MonitoringStore
from llmops.registry.pointers import ReleasePointers
from llmops.registry.prompts import PromptStore
from llmops.registry.resolved import ResolvedRelease, resolve_release
from llmops.registry.rollouts import RolloutStore
from llmops.registry.routestate import RouteStateStore
from llmops.registry.runs import RunStore
from llmops.registry.triggers import TriggerStore
from llmops.release import Release


class Registry:
    """The typed stores of one workspace's registry."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._backend = Backend(ws)

    @property
    def uri(self) -> str:
        return self._backend.uri

    @cached_property
    def prompts(self) -> PromptStore:
        return PromptStore(self._backend)

    @cached_property
    def adapters(self) -> AdapterStore:
        return AdapterStore(self._backend)

    @cached_property
    def pointers(self) -> ReleasePointers:
        return ReleasePointers(self._backend, self.audit)

    @cached_property
    def routes(self) -> RouteStateStore:
        return RouteStateStore(self._backend, self.audit)

    @cached_property
    def audit(self) -> AuditStore:
        return AuditStore(self._backend)

    @cached_property
    def leases(self) -> LeaseStore:
        return LeaseStore(self._backend)

    @cached_property
    def evals(self) -> EvalRecordStore:
        return EvalRecordStore(self._backend)

    @cached_property
    def models(self) -> BaseModelStore:
        return BaseModelStore(self._backend)

    @cached_property
    def runs(self) -> RunStore:
        return RunStore(self._backend)

    @cached_property
    def monitoring(self) -> MonitoringStore:
        return MonitoringStore(self._backend)

    @cached_property
    def triggers(self) -> TriggerStore:
        return TriggerStore(self._backend)

    @cached_property
    def rollouts(self) -> RolloutStore:
        return RolloutStore(self._backend)

    @cached_property
    def datasets(self) -> DatasetStore:
        return DatasetStore(self._backend)

    def ping(self) -> None:
        """One round trip to the registry; RegistryError (naming the URI) when it fails."""
        with self._backend.call("registry does not answer"):
            self._backend.client.search_experiments(max_results=1)

    def resolve(self, release: Release) -> ResolvedRelease:
        """``release`` with every reference looked up (aliases followed); NotFoundError names what is missing."""
        return resolve_release(self.adapters, self.prompts, release)


def connect(ws: Workspace, *, check: bool = True) -> Registry:
    """The registry of ``ws``; with ``check``, RegistryError at once when it cannot be reached."""
    if check:
        check_reachable(ws.tracking_uri)
    return Registry(ws)
