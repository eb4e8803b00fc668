"""``llmops serve …``: run a vLLM engine, and the gateway in front of it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import WorkspaceOpt, console, run_until_stopped, stop_requested, workspace
from llmops.config.gateway import is_loopback, load_gateway_file
from llmops.engine import EngineSettings, start_engine
from llmops.engine.keys import ENGINE_KEY_ENV, engine_key_path, serve_key
from llmops.errors import ConfigError
from llmops.extras import require
from llmops.models.base import locate_base
from llmops.names import check_name
from llmops.redact import install_log_redaction

app = typer.Typer(help="Serve: a vLLM engine (LoRA on) and the OpenAI-compatible gateway.", no_args_is_help=True)


@app.command()
def engine(
    model: Annotated[
        str | None, typer.Option(help="Base model: hub id or folder (default: the workspace's base_model).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    served_name: Annotated[
        str | None, typer.Option("--served-name", help="Name clients send as `model` (default: the model).")
    ] = None,
    max_loras: Annotated[int, typer.Option(help="Adapters in one batch.")] = 4,
    max_lora_rank: Annotated[int, typer.Option(help="Highest LoRA rank accepted (8, 16, 32, …).")] = 16,
    max_cpu_loras: Annotated[int | None, typer.Option(help="Adapters kept in host memory.")] = None,
    kv_cache_gib: Annotated[int, typer.Option(help="CPU only: KV cache size in GiB.")] = 1,
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait for /health.")] = 300.0,
    name: Annotated[
        str, typer.Option(help="The engine's name in serving/gateway.yaml (names its key file).")
    ] = "local",
    resolve_adapters: Annotated[
        bool,
        typer.Option(
            "--resolve-adapters",
            help="Fetch registry adapters asked for by name (NAME-vVERSION-SHA12) on first request, sha256-verified "
            "(for replicas behind a Service; set the gateway's engines.NAME.sync_adapters: false).",
        ),
    ] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Start vLLM's OpenAI server (LoRA and runtime adapter loading on); Ctrl-C stops it.

    It demands an API key on every /v1 call: $LLMOPS_ENGINE_KEY if set, else the key in
    .llmops/engines/NAME.key (generated on first start, mode 0600), which the gateway's engine NAME reads.
    The gateway loads registry adapters into it by name (NAME-vVERSION-SHA12) when routes need them; with
    --resolve-adapters the engine fetches them from the registry itself on first request (sha256-verified).

    Example: llmops serve engine --port 8000
    """
    require("serve engine", "engine")
    check_name(name, "engine")
    ws = workspace(ws_path)
    out = console()
    with out.status("resolving the base model…"):
        base = locate_base(ws, model)
    settings = EngineSettings(
        model=base,
        host=host,
        port=port,
        served_model_name=served_name,
        max_loras=max_loras,
        max_lora_rank=max_lora_rank,
        max_cpu_loras=max_cpu_loras,
        kv_cache_gib=kv_cache_gib,
        startup_timeout_s=startup_timeout,
        api_key=serve_key(ws.home, name)[0],
        resolve_adapters=resolve_adapters,
        workspace=str(ws.root) if resolve_adapters else None,
    )
    log_path = ws.logs_dir / f"vllm-{port}.log"
    stop = stop_requested()
    with out.status(f"starting vLLM on {settings.url} (tens of seconds)…"):
        proc = start_engine(settings, log_path)
    out.print(
        f"[green]vLLM[/green] {settings.base_url}  model {settings.model_name}  (log: {log_path}, pid {proc.pid})"
    )
    key_source = f"${ENGINE_KEY_ENV}" if os.environ.get(ENGINE_KEY_ENV) else "its key file"
    out.print(f"API key: {key_source} ({engine_key_path(ws.home, name)}); clients send Authorization: Bearer KEY")
    out.print("Ctrl-C to stop")
    try:
        run_until_stopped(stop, proc.alive, f"vLLM exited; see {log_path}")
    finally:
        proc.stop()
    out.print("stopped")


@app.command()
def gateway(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway config file.")] = Path("serving/gateway.yaml"),
    port: Annotated[int | None, typer.Option(help="Port (default: server.port of the config).")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default: server.host of the config).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    ws_path: WorkspaceOpt = None,
) -> None:
    """Run the OpenAI-compatible gateway (one uvicorn worker; run replicas behind a load balancer).

    Clients call POST /v1/chat/completions with `model` = a route of the config; API keys come from
    the config (sha256) or the environment variables it names. On SIGTERM (or Ctrl-C) it stops accepting
    connections, lets requests and streams in flight finish for up to `server.drain_s` seconds, then exits.

    Example: LLMOPS_GATEWAY_KEY=… llmops serve gateway --config serving/gateway.yaml
    """
    require("serve gateway", "gateway")
    import uvicorn

    # the gateway's stack (FastAPI, aiohttp, prometheus) loads only when it serves: `llmops --help` stays fast
    from llmops.gateway.app import build_app
    from llmops.gateway.resolver import RegistryResolver
    from llmops.gateway.settings import settings_from_file

    ws = workspace(ws_path)
    path = config if config.is_absolute() else (Path.cwd() / config)
    if not path.exists() and (ws.root / config).exists():
        path = ws.root / config
    spec = load_gateway_file(path, display=str(config))
    if host is not None and not spec.auth.enabled and not is_loopback(host):
        raise ConfigError.at(
            str(config), f"auth.enabled is false, so --host must be a loopback address (got {host!r})", field="auth"
        )
    ws.home.mkdir(parents=True, exist_ok=True)  # holds the generated sticky-routing secret, shared by replicas
    settings = settings_from_file(spec, home=ws.home, file=str(config))
    app = build_app(settings, RegistryResolver(ws))
    bind_host = host or spec.server.host
    bind_port = port or spec.server.port
    server_config = uvicorn.Config(
        app,
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=spec.server.drain_s,  # type: ignore[arg-type]  # typed int; float seconds work
    )  # configures uvicorn's loggers; then every handler gets the redacting filter
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        install_log_redaction(logging.getLogger(name))  # no credential (registry URI, key) in any log line
    console().print(f"[green]gateway[/green] http://{bind_host}:{bind_port}/v1  routes: {', '.join(settings.routes)}")
    uvicorn.Server(server_config).run()
