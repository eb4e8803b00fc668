"""``llmops finetune …``: train LoRA adapters here or on a Ray cluster; follow cluster jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, print_json, workspace
from llmops.cli.render import RichReporter
from llmops.errors import ConfigError, LaunchError
from llmops.extras import require
from llmops.finetune.job import find_job_file, load_job
from llmops.finetune.launch import LaunchRequest, LocalLauncher
from llmops.finetune.ray_launcher import RayLauncher, build_request
from llmops.finetune.runner import RunOptions
from llmops.finetune.scoring import score_file

app = typer.Typer(
    help="Fine-tune LoRA adapters from finetune/*.yaml jobs: here (run) or on a Ray cluster (launch).",
    no_args_is_help=True,
)

ClusterOpt = Annotated[
    str,
    typer.Option(
        "--cluster", envvar="RAY_ADDRESS", help="Ray dashboard address, e.g. http://127.0.0.1:8265 (or $RAY_ADDRESS)."
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the interrupted run of this job from its latest complete checkpoint.")
]
AllowOpt = Annotated[
    bool,
    typer.Option("--allow-warnings", help="Train despite data warnings (logged to the run; bad rows are dropped)."),
]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", min=1, help="Override training.max_steps.")]
BaseModelOpt = Annotated[
    str | None, typer.Option("--base-model", help="Override base_model (e.g. a local copy of the same model).")
]


@app.command()
def run(
    job: Annotated[Path, typer.Argument(help="Job file, e.g. finetune/support-triage.yaml.")],
    resume: ResumeOpt = False,
    allow_warnings: AllowOpt = False,
    max_steps: MaxStepsOpt = None,
    base_model: BaseModelOpt = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Train the job here and register the adapter as a new version (no alias is set).

    Checks everything first (schema, data, prompt version, base model); SIGTERM or Ctrl-C saves a
    checkpoint and stops (exit 75); --resume continues from it.

    Example: llmops finetune run finetune/support-triage.yaml --max-steps 20
    """
    require("finetune run", "train")
    ws = workspace(ws_path)
    path = find_job_file(job, ws.root)
    out = console()
    options = RunOptions(resume=resume, allow_warnings=allow_warnings, max_steps=max_steps, base_model=base_model)
    launcher = LocalLauncher(ws, RichReporter(out))
    launcher.submit(LaunchRequest(ws.root, str(path), options))
    outcome = launcher.outcome
    if outcome is None or outcome.adapter is None:
        return  # a non-zero rank of a multi-GPU job: rank 0 reports
    r = outcome.result
    loss = f"{r.final_eval_loss:.4f}" if r.final_eval_loss is not None else "-"
    out.print(
        f"[green]registered[/green] adapter {outcome.adapter.ref} (run {outcome.run_id}); "
        f"{r.steps} steps, {r.tokens_per_s:,.0f} tok/s, final eval loss {loss}, {r.batching}, {r.precision} on {r.device}",
        soft_wrap=True,
    )


@app.command()
def launch(
    job: Annotated[Path, typer.Argument(help="Job file, e.g. finetune/support-triage.yaml.")],
    cluster: ClusterOpt,
    resume: ResumeOpt = False,
    allow_warnings: AllowOpt = False,
    max_steps: MaxStepsOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job until it ends; exit non-zero unless it succeeded.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="With --wait: give up after this many seconds.")] = 3600.0,
    python: Annotated[str, typer.Option(help="Python executable on the cluster nodes.")] = "python",
    stop_grace: Annotated[
        int, typer.Option(min=1, help="On cancel: seconds between SIGTERM (checkpoint + stop) and SIGKILL.")
    ] = 120,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Submit the job to a Ray cluster (Ray Jobs API); the workspace travels as the job's working dir.

    The job reaches this workspace's registry (MLFLOW_TRACKING_URI is passed along) and registers its
    adapter there. GPUs come from the job's resources.gpus.

    Example: llmops finetune launch finetune/support-triage.yaml --cluster http://127.0.0.1:8265 --wait
    """
    require("finetune launch", "ray")
    ws = workspace(ws_path)
    path = find_job_file(job, ws.root)
    if not path.is_relative_to(ws.root):
        raise ConfigError.at(path, f"the job file must lie inside the workspace {ws.root} (it is uploaded with it)")
    spec = load_job(path, display=path.relative_to(ws.root).as_posix())
    options = RunOptions(resume=resume, allow_warnings=allow_warnings, max_steps=max_steps)
    launcher = RayLauncher(cluster)
    request = build_request(ws, path, spec, options, address=cluster, python=python, stop_grace_s=stop_grace)
    job_id = launcher.submit(request)
    out = console()
    out.print(f"submitted [bold]{job_id}[/bold] to {cluster}: {request.entrypoint()}")
    out.print(f"follow it: llmops finetune status {job_id} --cluster {cluster}")
    if not wait:
        return
    with out.status(f"waiting for {job_id}"):
        state = launcher.wait(job_id, timeout_s=timeout)
    out.print(launcher.logs(job_id), markup=False, highlight=False, end="")
    out.print(f"job {job_id}: {state}")
    if state != "SUCCEEDED":
        raise LaunchError(f"job {job_id} ended {state} on {cluster}")


@app.command()
def status(
    job_id: Annotated[str, typer.Argument(help="Submission id printed by `launch`.")],
    cluster: ClusterOpt,
    as_json: JsonOpt = False,
) -> None:
    """Print a cluster job's state: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.

    Example: llmops finetune status llmops-support-triage-1a2b3c4d --cluster http://127.0.0.1:8265 --json
    """
    require("finetune status", "ray")
    state = RayLauncher(cluster).status(job_id)
    if as_json:
        print_json({"job_id": job_id, "cluster": cluster, "status": state})
        return
    console().print(state)


@app.command()
def logs(
    job_id: Annotated[str, typer.Argument(help="Submission id printed by `launch`.")], cluster: ClusterOpt
) -> None:
    """Print a cluster job's output so far.

    Example: llmops finetune logs llmops-support-triage-1a2b3c4d --cluster http://127.0.0.1:8265
    """
    require("finetune logs", "ray")
    console().print(RayLauncher(cluster).logs(job_id), markup=False, highlight=False, end="")


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="Submission id printed by `launch`.")], cluster: ClusterOpt
) -> None:
    """Stop a cluster job: SIGTERM first, so it finishes its step and saves a checkpoint; nothing is registered.

    The checkpoint stays in the job's working dir on the cluster (a new `launch` starts over).

    Example: llmops finetune cancel llmops-support-triage-1a2b3c4d --cluster http://127.0.0.1:8265
    """
    require("finetune cancel", "ray")
    stopped = RayLauncher(cluster).cancel(job_id)
    console().print(f"job {job_id}: {'stop requested' if stopped else 'already finished'}")


@app.command()
def score(
    target: Annotated[
        Path, typer.Argument(help="A job file (scores its held-out `test:` split) or a JSONL file of rows.")
    ],
    prompt: Annotated[
        str | None,
        typer.Option(help="Prompt version for prompt rows (default: the adapter's training prompt, else the job's)."),
    ] = None,
    adapter: Annotated[
        str | None, typer.Option(help="Registered adapter NAME[@alias|/version]; default: the base model alone.")
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Base model (default: the job's, else the adapter's, else the workspace's).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N rows.")] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Exact match of greedy answers against the rows' targets (base model, or base + a registered adapter).

    When every target is a JSON object, each field's accuracy is printed too (support-triage: intent, priority).

    Example: llmops finetune score finetune/support-triage.yaml --adapter support-triage-lora/1
    """
    require("finetune score", "train")
    ws = workspace(ws_path)
    data, fallback_prompt = target, None
    if target.suffix in (".yaml", ".yml"):
        path = find_job_file(target, ws.root)
        job = load_job(path, display=str(target))
        test = job.test_path(ws.root)
        if test is None:
            raise ConfigError.at(
                target, "the job has no held-out split: set `test:` or pass a JSONL file", field="test"
            )
        data, fallback_prompt, base_model = test, job.prompt, base_model or job.base_model
    out = console()
    with out.status("generating"):
        result, label = score_file(
            ws,
            data,
            prompt=prompt,
            adapter=adapter,
            base_model=base_model,
            limit=limit,
            fallback_prompt=fallback_prompt,
        )
    wrong = [(a, t) for a, t in zip(result.answers, result.targets, strict=True) if a != t]
    for answer, expected in wrong[:5]:
        out.print(f"  expected {expected!r}, got {answer!r}", markup=False, soft_wrap=True)
    out.print(f"exact match {result.exact_match:.1%} ({result.n - len(wrong)}/{result.n}) for {label}; rows {data}")
    fields = result.field_accuracy()
    if fields:
        out.print("field accuracy: " + ", ".join(f"{key} {value:.1%}" for key, value in fields.items()))
