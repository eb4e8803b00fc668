"""The prompt library API: load, render, convert to LangChain (alias moves: `llmops.promotion`).

>>> from llmops.prompts.api import render
>>> render("support-triage@production", {"message": "My card was charged twice"})  # doctest: +SKIP
[{'role': 'system', 'content': '...'}, {'role': 'user', 'content': 'My card was charged twice'}]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmops.config.workspace import Workspace, load_workspace
from llmops.errors import NotFoundError
from llmops.prompts.render import render_messages
from llmops.refs import PromptRef
from llmops.registry import connect
from llmops.registry.prompts import PromptStore, PromptVersionInfo

if TYPE_CHECKING:
    from langchain_core.prompts import ChatPromptTemplate


def registry(ws: Workspace | None = None) -> PromptStore:
    """The prompt store of ``ws``'s registry (default: the workspace found from the current folder)."""
    return connect(ws or load_workspace()).prompts


def load_prompt(ref: str | PromptRef, ws: Workspace | None = None) -> PromptVersionInfo:
    """The prompt version ``ref`` names (``NAME``, ``NAME@alias``, ``NAME/VERSION``)."""
    return registry(ws).get(ref)


def render(
    ref: str | PromptRef | PromptVersionInfo, variables: Mapping[str, Any], ws: Workspace | None = None
) -> list[dict[str, str]]:
    """Render a registered prompt version into OpenAI-style chat messages."""
    info = ref if isinstance(ref, PromptVersionInfo) else load_prompt(ref, ws)
    return render_messages(info.spec, variables, version=info.version)


_LC_ROLES = {"system": "system", "user": "human", "assistant": "ai"}


def to_langchain(ref: str | PromptRef | PromptVersionInfo, ws: Workspace | None = None) -> ChatPromptTemplate:
    """A LangChain ``ChatPromptTemplate`` (jinja2 format, sandboxed by LangChain) for a prompt version."""
    from langchain_core.prompts import ChatPromptTemplate

    info = ref if isinstance(ref, PromptVersionInfo) else load_prompt(ref, ws)
    spec = info.spec
    template = ChatPromptTemplate.from_messages(
        [(_LC_ROLES[m.role], m.content) for m in spec.messages], template_format="jinja2"
    )
    defaults = {k: v.default for k, v in spec.variables.items() if v.default is not None}
    optional = {k: "" for k, v in spec.variables.items() if not v.required and v.default is None}
    partials = {**optional, **defaults}
    return template.partial(**partials) if partials else template


__all__ = ["NotFoundError", "load_prompt", "registry", "render", "to_langchain"]
