"""The registry façade: the only package that imports mlflow.

``connect(ws)`` → :class:`Registry` with typed stores: ``prompts`` (prompt versions), ``adapters``
(adapter versions), ``pointers`` (route → stage → release, with history), ``audit`` (alias moves),
``evals`` (eval records), ``models`` (base models), ``runs`` (tracked fine-tune runs). Every
``llmops.*`` tag key lives in :mod:`llmops.registry.tags`. "Not found" is ``None`` (or
:class:`~llmops.errors.NotFoundError` from ``get``); any other failure is
:class:`~llmops.errors.RegistryError`.
"""

from llmops.registry.client import Registry, connect

__all__ = ["Registry", "connect"]
