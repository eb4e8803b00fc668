"""``llmops audit``: every move of a pointer, alias or weight, filtered, as a table, JSON, JSONL or CSV.

Every path that moves something writes a record: ``promote``/``rollback`` (kind ``release``, with the adapter
and prompt alias moves of the same promotion, kinds ``adapter`` and ``prompt``), ``prompts promote``
(``prompt``), ``PUT /admin/routes`` and ``llmops route weights`` (``weights``), and ``llmops rollout``
(``rollout``: started, paused, succeeded, failed, aborted, with its evidence, and the ``weights`` and
``release`` moves it made). ``llmops logs prune`` adds one ``retention`` record per object it pruned.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, iso_utc, print_json, workspace
from llmops.cli.retrain import parse_since
from llmops.errors import ConfigError
from llmops.names import check_name
from llmops.registry import connect
from llmops.registry.audit import AuditRecord, settled

FIELDS = ("record_id", "when", "actor", "kind", "object", "alias", "from_version", "to_version", "outcome", "forced",
          "reason", "detail", "eval_records")  # fmt: skip
KINDS = ("prompt", "adapter", "release", "weights", "rollout", "retention")


def as_row(r: AuditRecord) -> dict[str, Any]:
    return {
        "record_id": r.record_id, "when": iso_utc(r.timestamp_ms), "actor": r.actor, "kind": r.kind,
        "object": r.object, "alias": r.alias, "from_version": r.from_version, "to_version": r.to_version,
        "outcome": r.outcome, "forced": r.forced, "reason": r.reason or None, "detail": r.detail or None,
        "eval_records": list(r.eval_records),
    }  # fmt: skip


def export(rows: list[dict[str, Any]], fmt: str) -> str:
    """``rows`` as JSON Lines (one record per line) or CSV (a header, eval records joined by ``;``)."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "eval_records": ";".join(row["eval_records"])})
    return out.getvalue()


def _epoch_ms(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return int(parse_since(value) * 1000)
    except ConfigError:
        raise ConfigError.at(option, f"{value!r} is neither epoch seconds nor an ISO-8601 time") from None


def audit(
    object_name: Annotated[
        str | None, typer.Option("--object", "--route", help="Only moves of this route, prompt or adapter.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only records by this actor (e.g. an email or key name).")] = None,
    kind: Annotated[str | None, typer.Option(help=f"Only this kind: {', '.join(KINDS)}.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO-8601 or epoch seconds; naive = UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO-8601 or epoch seconds).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent N records.")] = 50,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also list the write-ahead 'pending' record of each move whose outcome is recorded."
        ),
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Export as jsonl or csv (all fields, detail included).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the export to this file.")] = None,
    as_json: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """List every move of a pointer, alias or weight (who, when, what, from, to, why), newest first.

    A move's write-ahead 'pending' record is listed only while no outcome settles it (the move died midway).

    Example: llmops audit --route support-triage --since 2026-11-01 --actor ci-bot
    Example: llmops audit --kind rollout --format csv -o rollouts.csv
    Example: llmops audit --json --limit 500
    """
    if object_name:
        check_name(object_name, "object")
    if kind is not None and kind not in KINDS:
        raise ConfigError.at("--kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if fmt is not None and fmt not in ("jsonl", "csv"):
        raise ConfigError.at("--format", f"{fmt!r}: use jsonl or csv")
    if output is not None and fmt is None:
        raise ConfigError.at("--output", "give --format jsonl or csv with --output")
    since_ms, until_ms = _epoch_ms(since, "--since"), _epoch_ms(until, "--until")
    # hiding settled pending records removes up to one record per move: read enough for `limit` moves
    records = connect(workspace(ws_path)).audit.records(
        object_name, limit=limit if show_all else 2 * limit + 1, actor=actor, kind=kind, since_ms=since_ms,
        until_ms=until_ms,
    )  # fmt: skip
    if not show_all:
        records = settled(records)[:limit]
    rows = [as_row(r) for r in records]
    if fmt is not None:
        text = export(rows, fmt)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            console().print(f"wrote {len(rows)} record(s) to {output}")
        return
    if as_json:
        print_json(rows)
        return
    table = Table("when (UTC)", "who", "kind", "object", "alias", "from", "to", "outcome", "reason", "eval records")
    for r in records:
        when = datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        outcome = r.outcome + (" (forced)" if r.forced else "")
        table.add_row(when, r.actor, r.kind, r.object, r.alias, r.from_version or "-", r.to_version or "-", outcome,
                      r.reason or "-", ",".join(r.eval_records) or "-")  # fmt: skip
    console().print(table if records else "no audit records")
