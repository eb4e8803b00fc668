"""`--json` output and untruncated tables: the pure pieces, and the commands that need no registry."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from rich.table import Table

from llmops.cli.common import console, iso_utc, print_json
from llmops.registry.audit import AuditRecord
from llmops.registry.audit import settled as hide_settled_pending

Cli = Callable[..., subprocess.CompletedProcess[str]]


def Rec(  # noqa: N802 - reads like the record it builds
    outcome: str,
    timestamp_ms: int,
    from_version: str | None = "1",
    to_version: str | None = "2",
    kind: str = "release",
    object: str = "support-triage",  # noqa: A002 - the audit record's field name
    alias: str = "production",
) -> AuditRecord:
    return AuditRecord(
        kind, object, alias, from_version, to_version, "test", outcome=outcome, timestamp_ms=timestamp_ms
    )


def test_a_settled_pending_record_is_hidden_whichever_comes_first() -> None:
    pending, moved = Rec("pending", 1000), Rec("moved", 1000)
    assert hide_settled_pending([moved, pending]) == [moved]
    assert hide_settled_pending([pending, moved]) == [moved]  # same millisecond: either order
    restored = Rec("restored", 1000)
    assert hide_settled_pending([restored, pending]) == [restored]  # an undone move is settled too


def test_a_crashed_move_stays_visible() -> None:
    crashed = Rec("pending", 2000)
    earlier = [Rec("moved", 1000, None, "1"), Rec("pending", 1000, None, "1")]
    assert hide_settled_pending([crashed, *earlier]) == [crashed, earlier[0]]


def test_a_retried_move_settles_only_its_own_pending_record() -> None:
    # 1 -> 2 died midway at t=2000, then the same move was retried and succeeded at t=3000
    retry_moved, retry_pending, crashed = Rec("moved", 3000), Rec("pending", 3000), Rec("pending", 2000)
    assert hide_settled_pending([retry_moved, retry_pending, crashed]) == [retry_moved, crashed]
    # an outcome older than a pending record does not settle it (1 -> 2 done once, rolled back, then died)
    old_moved, rolled_back = Rec("moved", 1000), Rec("rolled-back", 1500, "2", "1")
    assert hide_settled_pending([crashed, rolled_back, old_moved]) == [crashed, rolled_back, old_moved]


def test_only_the_same_move_settles_a_pending_record() -> None:
    pending = Rec("pending", 1000)
    for other in (
        Rec("moved", 1000, kind="prompt"),
        Rec("moved", 1000, object="support-reply"),
        Rec("moved", 1000, alias="canary"),
        Rec("moved", 1000, from_version=None),
        Rec("moved", 1000, to_version="3"),
    ):
        assert hide_settled_pending([other, pending]) == [other, pending], other


def test_order_is_kept_and_each_outcome_hides_one_pending_record() -> None:
    records = [
        Rec("moved", 3000, "2", "3"),
        Rec("pending", 3000, "2", "3"),
        Rec("pending", 2000, "1", "2"),
        Rec("pending", 2000, "1", "2"),  # a duplicate write-ahead record: one outcome settles one
        Rec("moved", 2000, "1", "2"),
        Rec("moved", 1000, None, "1"),
    ]
    assert hide_settled_pending(records) == [records[0], records[3], records[4], records[5]]
    assert hide_settled_pending([]) == []


def test_iso_utc() -> None:
    assert iso_utc(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert datetime.fromisoformat(iso_utc(1_700_000_000_000) or "").timestamp() == 1_700_000_000
    assert iso_utc(0) is None and iso_utc(None) is None


def test_print_json_is_one_valid_document(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"b": [1, math.nan], "a": {"z": math.inf, "y": (1, 2)}, "c": Path("/x"), "d": "[red]x[/red]"})
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": {"y": [1, 2], "z": None}, "b": [1, None], "c": "/x", "d": "[red]x[/red]"}
    assert out.index('"a"') < out.index('"b"')  # sorted keys
    assert "NaN" not in out and "Infinity" not in out


def test_piped_tables_are_not_cut_to_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    name = "support-triage-" + "x" * 49  # the longest valid name, 64 characters
    table = Table("adapter", "aliases", "detail")
    table.add_row(f"{name}/12", "production,canary", "adapter " + "y" * 90)
    out = console()
    assert not out.is_terminal
    out.print(table)
    printed = capsys.readouterr().out
    assert f"{name}/12" in printed and "y" * 90 in printed
    assert "…" not in printed


@pytest.mark.parametrize(
    "command",
    [
        ["adapters", "list"],
        ["adapters", "show"],
        ["prompts", "list"],
        ["prompts", "show"],
        ["eval", "show"],
        ["audit"],
        ["doctor"],
        ["finetune", "status"],
    ],
)
def test_every_list_show_and_status_command_takes_json(command: list[str], tmp_path: Path, invoke_llmops: Cli) -> None:
    helped = invoke_llmops(*command, "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--json" in helped.stdout


def test_json_errors_go_to_stderr_with_the_usual_exit_code(tmp_path: Path, invoke_llmops: Cli) -> None:
    result = invoke_llmops("prompts", "show", "Not/A/Name", "--json", "--workspace", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "invalid" in result.stderr
