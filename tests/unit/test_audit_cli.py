"""``llmops audit``: filters by route, actor, kind and time, and exports every field as JSON Lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.registry import connect
from llmops.registry.audit import AuditRecord

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAY_MS = 86_400_000
T0 = 1_796_000_000_000  # 2026-11-30


@pytest.fixture(scope="module")
def ws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    audit = connect(load_workspace(root, env={})).audit
    moves = [
        ("release", "triage", "production", "ci-bot", 0, "moved", "adapter a/2 + prompt p/1"),
        ("weights", "triage", "weights", "ops", 1, "moved", '{"weights": {"stable": 90, "canary": 10}}'),
        ("rollout", "triage", "canary", "alice@example.com", 2, "failed", '{"checks": [{"check": "error_rate"}]}'),
        ("prompt", "support-reply", "production", "ci-bot", 3, "moved", "support-reply v2"),
    ]
    for kind, obj, alias, actor, day, outcome, detail in moves:
        audit.append(AuditRecord(kind=kind, object=obj, alias=alias, from_version="1", to_version="2", actor=actor,
                                 reason=f"{kind}, with a comma", outcome=outcome, detail=detail,
                                 timestamp_ms=T0 + day * DAY_MS))  # fmt: skip
    return root


def rows(cli: Cli, root: Path, *args: str) -> list[dict[str, object]]:
    done = cli("audit", "--workspace", str(root), "--json", *args, cwd=root, env={})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_filters_by_route_actor_kind_and_time(invoke_llmops: Cli, ws_root: Path) -> None:
    assert [r["kind"] for r in rows(invoke_llmops, ws_root)] == ["prompt", "rollout", "weights", "release"]
    assert [r["kind"] for r in rows(invoke_llmops, ws_root, "--route", "triage")] == ["rollout", "weights", "release"]
    assert [r["kind"] for r in rows(invoke_llmops, ws_root, "--actor", "ci-bot")] == ["prompt", "release"]
    assert [r["actor"] for r in rows(invoke_llmops, ws_root, "--kind", "rollout")] == ["alice@example.com"]
    window = rows(invoke_llmops, ws_root, "--since", str((T0 + DAY_MS) / 1000), "--until", "2026-12-02T12:00:00Z")
    assert [r["kind"] for r in window] == ["rollout", "weights"]


def test_exports_jsonl_and_csv_with_every_field(invoke_llmops: Cli, ws_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    done = invoke_llmops("audit", "--workspace", str(ws_root), "--format", "csv", "-o", str(out), cwd=ws_root, env={})
    assert done.returncode == 0, done.stdout + done.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["kind"] for r in table] == ["prompt", "rollout", "weights", "release"]
    assert table[1]["reason"] == "rollout, with a comma" and json.loads(table[1]["detail"])["checks"]
    done = invoke_llmops("audit", "--workspace", str(ws_root), "--format", "jsonl", "--kind", "weights",
                         cwd=ws_root, env={})  # fmt: skip
    [line] = done.stdout.splitlines()
    assert json.loads(line)["detail"] == '{"weights": {"stable": 90, "canary": 10}}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "alias"), "--kind"),
        (("--format", "xml"), "--format"),
        (("--until", "next tuesday"), "--until"),
        (("--actor", "x' or '1'='1"), "--actor"),
        (("-o", "out.csv"), "--output"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    invoke_llmops: Cli, ws_root: Path, args: tuple[str, ...], message: str
) -> None:
    done = invoke_llmops("audit", "--workspace", str(ws_root), *args, cwd=ws_root, env={})
    assert done.returncode != 0 and message in done.stdout + done.stderr
