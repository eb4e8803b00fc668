"""``llmops prompts …``: prompts as code, versioned in the MLflow Prompt Registry."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, iso_utc, print_json, workspace
from llmops.errors import ConfigError, ValidationFailed
from llmops.gitinfo import file_info
from llmops.promotion import promote_prompt_alias
from llmops.prompts.api import registry
from llmops.prompts.files import check_file, discover
from llmops.prompts.render import coerce_cli_value, render_messages
from llmops.prompts.spec import PromptSpec
from llmops.refs import PromptRef

app = typer.Typer(
    help="Prompts as code: validate YAML specs, push new versions to the registry, render, promote.",
    no_args_is_help=True,
)


def _checked_specs(root: Path, files: list[Path] | None) -> list[tuple[Path, PromptSpec]]:
    if files:  # a folder stands for the prompt files under it
        paths = [f for given in files for f in (discover(given) if given.is_dir() else [given])]
    else:
        paths = discover(root / "prompts")
    if not paths:
        where = ", ".join(str(f) for f in files) if files else str(root / "prompts")
        raise ConfigError.at(where, "no prompt files found (expected *.yaml files, e.g. prompts/NAME.yaml)")
    out, problems = [], []
    for path in paths:
        shown = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else str(path)
        spec, found = check_file(path, display=shown)
        problems.extend(found)
        if spec is not None and not found:
            out.append((path, spec))
    if problems:
        raise ValidationFailed(problems)
    return out


@app.command()
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Prompt files or folders (default: prompts/*.yaml).")
    ] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Check prompt files: schema, template syntax, unsafe attribute access, undeclared variables.

    Example: llmops prompts validate prompts/support-triage.yaml
    """
    ws = workspace(ws_path)
    specs = _checked_specs(ws.root, files)
    console().print(f"[green]ok[/green] {len(specs)} prompt file(s) valid")


@app.command()
def push(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Prompt files or folders (default: prompts/*.yaml).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be registered; write nothing.")] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Register a new version of each prompt whose content changed since its latest version.

    Versions are tagged with the git commit, file path and content sha256; the commit subject
    becomes the version's commit message. Safe to run repeatedly and concurrently (e.g. in CI).

    Example: llmops prompts push --dry-run
    """
    ws = workspace(ws_path)
    specs = _checked_specs(ws.root, files)
    reg = registry(ws)
    table = Table("prompt", "result", "version", "file")
    registered = 0
    for path, spec in specs:
        result = reg.push(spec, file_info(path), dry_run=dry_run)
        registered += result.action == "registered"
        colour = {"registered": "green", "unchanged": "dim", "would-register": "yellow"}[result.action]
        table.add_row(spec.name, f"[{colour}]{result.action}[/{colour}]", str(result.version or "-"), result.path)
    out = console()
    out.print(table)
    out.print(f"{registered} version(s) registered" + (" (dry run)" if dry_run else ""))


@app.command("list")
def list_(as_json: JsonOpt = False, ws_path: WorkspaceOpt = None) -> None:
    """List registered prompts with their latest version and aliases.

    Example: llmops prompts list
    Example: llmops prompts list --json
    """
    reg = registry(workspace(ws_path))
    table = Table("prompt", "latest", "aliases", "git commit", "path")
    items: list[dict[str, object]] = []
    for name in reg.names():
        versions = reg.versions(name)
        if not versions:
            continue
        latest = versions[-1]
        alias_versions = reg.aliases(name)
        aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(alias_versions.items()))
        table.add_row(name, f"v{latest.version}", aliases or "-", (latest.git_commit or "-")[:10], latest.path or "-")
        items.append(
            {
                "name": name,
                "latest_version": latest.version,
                "aliases": dict(alias_versions),
                "uri": latest.uri,
                "sha256": latest.content_hash,
                "git_commit": latest.git_commit or None,
                "path": latest.path or None,
                "created": iso_utc(latest.created_ms),
            }
        )
    if as_json:
        print_json(items)
        return
    console().print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@alias or NAME/VERSION.")],
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show one prompt version: messages, variables, params and lineage.

    Example: llmops prompts show support-triage@production
    Example: llmops prompts show support-triage/2 --json
    """
    info = registry(workspace(ws_path)).get(PromptRef.parse(ref))
    if as_json:
        print_json(
            {
                "name": info.name,
                "version": info.version,
                "uri": info.uri,
                "aliases": list(info.aliases),
                "sha256": info.content_hash,
                "git_commit": info.git_commit or None,
                "path": info.path or None,
                "commit_message": info.commit_message or None,
                "created": iso_utc(info.created_ms),
                "spec": info.spec.model_dump(mode="json"),
            }
        )
        return
    out = console()
    out.print(f"[bold]{info.name}[/bold] v{info.version}  aliases: {', '.join(info.aliases) or '-'}")
    out.print(f"uri: {info.uri}   sha256: {info.content_hash[:16]}…")
    out.print(f"git: {info.git_commit or '-'}  path: {info.path or '-'}  message: {info.commit_message or '-'}")
    out.print(yaml.safe_dump(info.spec.to_yaml_data(), sort_keys=False, allow_unicode=True), markup=False)


@app.command()
def diff(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    a: Annotated[str, typer.Argument(help="Version or alias, e.g. 1 or production.")],
    b: Annotated[str, typer.Argument(help="Version or alias, e.g. 2 or canary.")],
    ws_path: WorkspaceOpt = None,
) -> None:
    """Unified diff between two versions (or aliases) of a prompt.

    Example: llmops prompts diff support-triage 1 2
    """
    reg = registry(workspace(ws_path))

    def text(sel: str) -> tuple[str, str]:
        ref = PromptRef.parse(f"{name}/{sel}" if sel.isdigit() else f"{name}@{sel}")
        info = reg.get(ref)
        return f"{name} v{info.version}", yaml.safe_dump(info.spec.to_yaml_data(), sort_keys=False)

    (la, ta), (lb, tb) = text(a), text(b)
    lines = difflib.unified_diff(ta.splitlines(True), tb.splitlines(True), fromfile=la, tofile=lb)
    out = "".join(lines)
    console().print(out or f"no difference between {la} and {lb}", markup=False)


def _parse_vars(spec: PromptSpec, pairs: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected k=v, got {pair!r}", param_hint="--var")
        values[key] = coerce_cli_value(spec, key, raw)
    return values


@app.command()
def render(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@alias, NAME/VERSION, or a local file path.")],
    var: Annotated[list[str] | None, typer.Option("--var", "-v", help="Variable as k=v (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as JSON.")] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Render a prompt version into chat messages (sandboxed Jinja2).

    Example: llmops prompts render support-triage@production --var message="I was charged twice"
    """
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        spec, problems = check_file(path)
        if problems:
            raise ValidationFailed(problems)
        assert spec is not None
        version = None
    else:
        info = registry(workspace(ws_path)).get(PromptRef.parse(ref))
        spec, version = info.spec, info.version
    messages = render_messages(spec, _parse_vars(spec, var or []), version=version)
    out = console()
    if as_json:
        out.print(json.dumps(messages, indent=2, ensure_ascii=False), markup=False)
        return
    for m in messages:
        out.print(f"[bold]{m['role']}[/bold]:")
        out.print(m["content"], markup=False)


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@alias or NAME/VERSION.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default prompts/NAME.yaml).")
    ] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Write a registered prompt version back to a YAML file.

    Example: llmops prompts pull support-triage@production -o /tmp/support-triage.yaml
    """
    parsed = PromptRef.parse(ref)
    ws = workspace(ws_path)
    info = registry(ws).get(parsed)
    target = output or ws.root / "prompts" / f"{info.name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"# pulled from {info.uri} (sha256 {info.content_hash[:12]})\n"
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(header + yaml.safe_dump(info.spec.to_yaml_data(), sort_keys=False, allow_unicode=True))
    tmp.replace(target)
    console().print(f"wrote {target}")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[int, typer.Option("--version", help="Version to point the alias at.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to move, e.g. production or canary.")] = "production",
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")] = "",
    ws_path: WorkspaceOpt = None,
) -> None:
    """Point NAME@ALIAS at a version and record the move in the audit log (--reason is required).

    An alias that a route in serving/gateway.yaml serves (`prompt: NAME@ALIAS`, or a `release:` stage whose
    release uses the prompt) is refused: move it with the gated `llmops promote ROUTE --prompt NAME/VERSION`.

    Example: llmops prompts promote support-triage --version 2 --alias staging --reason "review the new wording"
    """
    record = promote_prompt_alias(workspace(ws_path), name, version, alias, reason=reason)
    if record.outcome == "unchanged":
        console().print(f"{name}@{alias} already points at v{record.to_version}")
        return
    console().print(
        f"[green]moved[/green] {name}@{alias}: v{record.from_version or '-'} → v{record.to_version}"
        f"  (audit {record.record_id})"
    )
