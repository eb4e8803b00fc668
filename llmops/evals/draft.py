"""A draft prompt: a prompt file evaluated as the candidate's prompt without registering it.

``llmops eval run SUITE --prompt-file prompts/x.yaml`` (the pull-request CI) scores the file's prompt
as it stands on the branch. The file is never pushed: its :class:`DraftRelease` names the prompt by
name only (no version), so its :class:`~llmops.release.Release` is not exact and has no key, and any
code path that would record it (an eval record, a pointer) refuses it. Its own :attr:`DraftRelease.key`
(release + the file's content sha256) keeps cached outputs of different drafts apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from llmops.prompts.files import load_checked
from llmops.refs import PromptRef
from llmops.registry.prompts import PromptVersionInfo
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release

#: the version number a draft's PromptVersionInfo carries (registered versions start at 1)
DRAFT_VERSION = 0


@dataclass(frozen=True)
class DraftRelease(ResolvedRelease):
    """A resolved release whose prompt is an unregistered prompt file (``path``, workspace-relative)."""

    path: str

    @property
    def content_sha256(self) -> str:
        assert self.prompt is not None
        return self.prompt.content_hash

    @property
    def key(self) -> str:
        """A digest of the release and the draft's content (for caches and reports; never a registry key)."""
        data = {"release": self.release.canonical(), "draft_prompt_sha256": self.content_sha256}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        adapter = f"adapter {self.release.adapter}" if self.release.adapter else "base model (no adapter)"
        return f"{adapter} + draft prompt {self.path} (sha256 {self.content_sha256[:12]}…)"


def draft_release(resolved: ResolvedRelease, path: Path, shown: str) -> DraftRelease:
    """``resolved`` (resolved without a prompt) with the prompt file at ``path`` (``shown``: as messages name it)
    as its prompt.

    The file is checked as ``llmops prompts validate`` checks it (schema, templates, name = file name);
    ValidationFailed lists every problem before any request is sent.
    """
    spec = load_checked(path, display=shown)
    info = PromptVersionInfo(
        name=spec.name,
        version=DRAFT_VERSION,
        spec=spec,
        content_hash=spec.content_hash(),
        git_commit=None,
        path=shown,
        commit_message=None,
        aliases=(),
        created_ms=0,
    )
    base = resolved.release
    release = Release(base.base_model, base.adapter, PromptRef(spec.name), base.params)  # by name: not exact
    return DraftRelease(release, resolved.adapter, info, shown)
