"""A vLLM LoRA resolver plugin: an engine replica fetches the registry adapters it is asked for itself.

Behind a Kubernetes Service the gateway cannot address each engine replica, so it cannot push adapters
into each one (``engines.NAME.sync_adapters: false`` in ``serving/gateway.yaml`` stops it trying). With
this plugin on, a request whose ``model`` is an adapter's engine name that the engine does not hold yet,
``NAME-vVERSION-SHA12`` (:func:`llmops.registry.adapters.lora_name`, what the gateway sends) or
``NAME-vVERSION``, makes vLLM ask :meth:`RegistryLoRAResolver.resolve_lora`, which fetches that version
through the registry façade (:meth:`llmops.registry.adapters.AdapterStore.fetch`: sha256-verified against
the version's ``llmops.sha256`` tag, cached) and hands vLLM the local folder. So any replica serves any
registry adapter on its first request.

Refused (vLLM answers 404 "does not exist" and logs nothing is loaded): a name that is not an adapter
version's, an unknown adapter or version, a ``SHA12`` that is not the start of the version's sha256, and a
version whose files fail their sha256 check (tampered, or a wrong tag: an error line in the engine log
says which). A registry that cannot be reached is logged as an error too and refused, never taken for
"not found" silently.

Opt-in. vLLM calls :func:`register` (entry point group ``vllm.general_plugins``) in every process of every
vLLM in the environment, so it does nothing unless the engine's environment says so:

================================  ==========================================================================
``LLMOPS_LORA_RESOLVER=registry``  turn the resolver on (``llmops serve engine --resolve-adapters`` sets it)
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=true``  vLLM consults resolvers only with this (``llmops serve engine`` sets it)
``LLMOPS_WORKSPACE``               the workspace whose registry is read (default: found from the current folder)
``MLFLOW_TRACKING_URI``            the registry, as for every llmops command (overrides ``llmops.yaml``)
``LLMOPS_CACHE_DIR``               where verified adapter copies are kept (default ``<llmops home>/cache``)
================================  ==========================================================================

Registry calls block, so they run in a worker thread (``asyncio.to_thread``), off vLLM's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vllm.lora.request import LoRARequest
from vllm.lora.resolver import LoRAResolver, LoRAResolverRegistry

from llmops.config.workspace import load_workspace
from llmops.engine.vllm_server import RESOLVER_ENV, RESOLVER_REGISTRY
from llmops.errors import IntegrityError, LlmopsError, NotFoundError
from llmops.names import NAME_PATTERN
from llmops.refs import AdapterRef

if TYPE_CHECKING:
    from llmops.registry import Registry

#: the workspace the resolver reads (the CLI's ``--workspace`` variable)
WORKSPACE_ENV = "LLMOPS_WORKSPACE"
#: the name the resolver is registered under in vLLM's LoRAResolverRegistry
RESOLVER_NAME = "llmops-registry"

# children of vLLM's "vllm" logger get its handler and format: these lines land in the engine's log
log = logging.getLogger("vllm.plugins.llmops_lora_resolver")

_LORA_NAME_RE = re.compile(rf"(?P<name>{NAME_PATTERN})-v(?P<version>[1-9][0-9]{{0,8}})(?:-(?P<sha12>[0-9a-f]{{12}}))?")


@dataclass(frozen=True)
class LoraName:
    """An adapter version as an engine is asked for it: ``NAME-vVERSION`` or ``NAME-vVERSION-SHA12``."""

    name: str
    version: int
    sha12: str | None = None

    @property
    def ref(self) -> AdapterRef:
        return AdapterRef(self.name, version=self.version)


def parse_lora_name(lora_name: str) -> LoraName | None:
    """The adapter version ``lora_name`` names; None when it names none (the base model, another resolver's)."""
    found = _LORA_NAME_RE.fullmatch(lora_name)
    if found is None:
        return None
    return LoraName(found["name"], int(found["version"]), found["sha12"])


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when the engine's environment turns the resolver on (``LLMOPS_LORA_RESOLVER=registry``)."""
    value = (os.environ if env is None else env).get(RESOLVER_ENV, "")
    return value.strip().lower() == RESOLVER_REGISTRY


#: looks a lora name up and returns a verified local copy; None when the registry holds no such version
Fetch = Callable[[LoraName], Path | None]


class RegistryFetch:
    """:data:`Fetch` against one workspace's registry, connected on first use (not at plugin load)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._registry: Registry | None = None

    def _connect(self) -> Registry:
        if self._registry is None:
            from llmops.registry import connect  # the registry stack loads only when an adapter is asked for

            root = self._env.get(WORKSPACE_ENV)
            self._registry = connect(load_workspace(Path(root) if root else None, env=self._env), check=False)
        return self._registry

    def __call__(self, wanted: LoraName) -> Path | None:
        adapters = self._connect().adapters
        try:
            info = adapters.find(wanted.ref)
        except NotFoundError:  # a registered model of that name that is not an llmops adapter
            return None
        if info is None:
            return None
        if wanted.sha12 is not None and not info.sha256.startswith(wanted.sha12):
            raise IntegrityError(
                f"adapter {info.ref}: asked for sha256 {wanted.sha12}…, the registry's version has "
                f"{info.sha256[:12] or 'none'}…; refusing to load it"
            )
        return adapters.fetch(info)


class RegistryLoRAResolver(LoRAResolver):
    """Resolves ``NAME-vVERSION[-SHA12]`` to a sha256-verified local copy of that registry adapter version."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
        wanted = parse_lora_name(lora_name)
        if wanted is None:
            return None
        try:
            path = await asyncio.to_thread(self._fetch, wanted)
        except IntegrityError as exc:
            log.error("llmops: refused adapter %s: %s", lora_name, exc)
            return None
        except LlmopsError as exc:  # the registry failed: say so (it is not "not found"), serve nothing
            log.error("llmops: cannot resolve adapter %s: %s", lora_name, exc)
            return None
        if path is None:
            log.info("llmops: no adapter version %s in the registry", lora_name)
            return None
        log.info("llmops: fetched adapter %s (sha256 verified) to %s", lora_name, path)
        # vLLM replaces the id with its own counter; any positive id is valid here
        return LoRARequest(lora_name=lora_name, lora_int_id=zlib.crc32(lora_name.encode()) + 1, lora_path=str(path))


def register() -> None:
    """The ``vllm.general_plugins`` entry point: register the resolver when the environment turns it on.

    vLLM runs this in each of its processes; without ``LLMOPS_LORA_RESOLVER=registry`` it does nothing.
    """
    if not enabled():
        return
    if os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "0").strip().lower() not in ("1", "true"):
        log.warning("llmops: %s is set but VLLM_ALLOW_RUNTIME_LORA_UPDATING is not: vLLM will not ask it", RESOLVER_ENV)
    LoRAResolverRegistry.register_resolver(RESOLVER_NAME, RegistryLoRAResolver(RegistryFetch()))
