"""What the gateway adds on top of an engine: latency, throughput, memory, streaming behaviour.

One run starts two fake engines (``bench/fake_upstream.py``, separate processes: one answers at once,
one streams 64 events 20 ms apart) and the gateway (one uvicorn worker, its own process) with API-key
auth, a 90/10 sticky route that renders a prompt, and the request log on. A raw keep-alive HTTP/1.1
client (httptools) then measures, for direct calls and calls through the gateway alike:

* latency at concurrency 1 (p50, p99) and the difference, interleaved in blocks to cancel drift;
* throughput at concurrency 32 for ``--duration`` seconds; then, in the same run, a route with capture at
  100% (inputs and outputs redacted into the request log) against the same route with capture off,
  in alternating blocks;
* the gateway's RSS (start, peak, end) across the whole run;
* streaming: time to first event (on streams of 64 events 20 ms apart, and back to back on one-event
  streams), and whether 64 events 20 ms apart arrive as 64 events ~20 ms apart.

Targets (DESIGN.md): added p50 <= 1 ms at c=1; >= 2,000 req/s at c=32; RSS <= 200 MB and flat;
added TTFT <= 1 ms; no re-buffering; capture at 100% keeps >= 90% of capture-off throughput. On a shared 2-core machine the client, engines and gateway
compete for CPU: ``--pin`` puts the gateway on CPU 0 and everything else on CPU 1.

``--soak SECONDS`` runs a soak instead: the gateway at concurrency 32 for that long, printing every
minute (``--soak-interval``) its RSS, open files, threads and asyncio tasks (read from inside the
gateway process through a bench-only ``GET /bench/tasks`` the benchmark wraps around the app), the
requests and errors of the minute; at the end, RSS growth from minute 5 to the end (for runs shorter
than 30 minutes: from the sample at 1/6 of the run). Targets: 0 errors, growth <= 10%.

Run: ``.venv/bin/python bench/gateway_overhead.py [--duration 10] [--pin]`` or ``… --soak 1800``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httptools
import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key"
MESSAGE = "Hello, I was charged twice for order 1234 and I would like a refund as soon as possible."


# -- the gateway under test (run in its own process) ---------------------------------------------------
class TaskCount:
    """Bench-only wrapper: ``GET /bench/tasks`` answers the number of asyncio tasks in the gateway process."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/tasks":
            body = orjson.dumps({"tasks": len(asyncio.all_tasks())})
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def serve_gateway(config: Path, port: int, count_tasks: bool = False) -> None:
    import uvicorn

    from llmops.config.gateway import load_gateway_file
    from llmops.gateway.app import build_app
    from llmops.gateway.resolver import StaticResolver
    from llmops.gateway.settings import settings_from_file

    spec = load_gateway_file(config)
    settings = settings_from_file(spec, home=config.parent, env={"BENCH_KEY": KEY})
    app: Any = build_app(settings, StaticResolver.from_prompt_dir(REPO / "prompts"))
    if count_tasks:
        app = TaskCount(app)
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


def gateway_config(fast: int, slow: int, log_path: Path) -> str:
    return f"""
engines:
  fast: {{url: "http://127.0.0.1:{fast}", model: base}}
  slow: {{url: "http://127.0.0.1:{slow}", model: base}}
routes:
  bench:
    targets:
      - {{name: stable, weight: 90, engine: fast, prompt: support-triage@production}}
      - {{name: canary, weight: 10, engine: fast, prompt: support-triage@production, params: {{temperature: 0.2}}}}
  captured:   # the same route with every request captured (inputs and outputs, redacted, in the log)
    capture: 1.0
    targets:
      - {{name: stable, weight: 90, engine: fast, prompt: support-triage@production}}
      - {{name: canary, weight: 10, engine: fast, prompt: support-triage@production, params: {{temperature: 0.2}}}}
  stream:
    targets:
      - {{name: only, weight: 1, engine: slow, prompt: support-triage@production}}
auth:
  keys: [{{name: bench, env: BENCH_KEY}}]
limits: {{max_tokens: 256}}
request_log: {{path: "{log_path}"}}
"""


class BareHop:
    """The floor to compare with: a raw ASGI app that forwards the body with aiohttp (streams chunk by
    chunk), nothing else: no auth, routing, rendering, metrics or log."""

    def __init__(self, upstream: str, stream_upstream: str) -> None:
        self.url = f"{upstream}/v1/chat/completions"
        self.stream_url = f"{stream_upstream}/v1/chat/completions"
        self.session: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import aiohttp

        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/readyz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        stream = b'"stream":true' in body
        url = self.stream_url if stream else self.url
        async with self.session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
            if stream:
                headers = [(b"content-type", b"text/event-stream")]
                await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            data = await resp.read()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def serve_bare(upstreams: str, port: int) -> None:
    import uvicorn

    fast, slow = upstreams.split(",")
    uvicorn.run(
        BareHop(fast, slow),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# -- a small raw HTTP/1.1 keep-alive client ----------------------------------------------------------
class Conn:
    """One keep-alive connection; ``request`` sends raw bytes and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.done = False
        self.on_body_cb: Callable[[bytes], None] | None = None

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def on_message_begin(self) -> None:
        self.body = []
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        if self.on_body_cb is not None:
            self.on_body_cb(body)

    def on_message_complete(self) -> None:
        self.done = True

    async def request(self, raw: bytes, on_body: Callable[[bytes], None] | None = None) -> tuple[int, bytes]:
        self.on_body_cb = on_body
        self.done = False
        self.writer.write(raw)
        while not self.done:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("connection closed")
            self.parser.feed_data(data)
        return self.parser.get_status_code(), b"".join(self.body)

    def close(self) -> None:
        self.writer.close()


def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    data = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
    )
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return head.encode() + b"\r\n" + data


def direct_body(stream: bool = False, max_tokens: int = 64) -> dict[str, Any]:
    from llmops.prompts.render import render_messages
    from llmops.prompts.spec import load_spec

    spec = load_spec(REPO / "prompts" / "support-triage.yaml")
    messages = render_messages(spec, {"message": MESSAGE})
    body: dict[str, Any] = {"model": "base", "messages": messages, "temperature": 0, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    return body


def gateway_body(i: int, route: str = "bench", stream: bool = False, max_tokens: int = 64) -> dict[str, Any]:
    body: dict[str, Any] = {"model": route, "prompt_variables": {"message": MESSAGE}, "user": f"user-{i}"}
    if stream:
        body["stream"] = True
        body["max_tokens"] = max_tokens
    return body


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- measurements --------------------------------------------------------------------------------------
def gateway_requests(n: int, route: str = "bench") -> list[bytes]:
    auth = {"authorization": f"Bearer {KEY}"}
    return [post("/v1/chat/completions", gateway_body(i, route), auth) for i in range(n)]


async def latency_c1(
    direct_port: int, gw_port: int, n: int, gw_requests: list[bytes], blocks: int = 4
) -> tuple[list[float], list[float]]:
    """Sequential requests, alternating blocks of direct calls and calls through ``gw_port``."""
    direct = await Conn.open(direct_port)
    gw = await Conn.open(gw_port)
    raw_direct = post("/v1/chat/completions", direct_body())
    d_times: list[float] = []
    g_times: list[float] = []
    per_block = max(1, n // blocks)
    for b in range(blocks):
        for _ in range(per_block):
            t0 = time.perf_counter()
            status, _ = await direct.request(raw_direct)
            d_times.append(time.perf_counter() - t0)
            assert status == 200
        for i in range(b * per_block, (b + 1) * per_block):
            t0 = time.perf_counter()
            status, body = await gw.request(gw_requests[i % len(gw_requests)])
            g_times.append(time.perf_counter() - t0)
            assert status == 200, body
    direct.close()
    gw.close()
    return d_times, g_times


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def throughput(
    port: int, make: Callable[[int], bytes], concurrency: int, duration: float, pid: int | None = None
) -> tuple[float, int, float | None]:
    """(requests per second, errors, server CPU microseconds per request when ``pid`` is given)."""
    conns = [await Conn.open(port) for _ in range(concurrency)]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    deadline = time.perf_counter() + duration
    counts = [0] * concurrency
    errors = [0]

    async def worker(k: int) -> None:
        conn = conns[k]
        i = k
        while time.perf_counter() < deadline:
            status, _ = await conn.request(make(i))
            if status != 200:
                errors[0] += 1
            counts[k] += 1
            i += concurrency

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu_per_request = (cpu_seconds(pid) - cpu0) / sum(counts) * 1e6 if pid else None
    for c in conns:
        c.close()
    return sum(counts) / elapsed, errors[0], cpu_per_request


async def stream_once(conn: Conn, raw: bytes) -> tuple[float, list[float]]:
    """(time to the first event, arrival time of each event relative to the request)."""
    t0 = time.perf_counter()
    arrivals: list[float] = []
    pending = [b""]

    def on_body(chunk: bytes) -> None:
        now = time.perf_counter() - t0
        pending[0] += chunk
        while b"\n\n" in pending[0]:
            _, pending[0] = pending[0].split(b"\n\n", 1)
            arrivals.append(now)

    status, body = await conn.request(raw, on_body)
    assert status == 200, body
    assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
    return arrivals[0], arrivals


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.samples.append((time.monotonic(), self.proc.memory_info().rss))


# -- orchestration ----------------------------------------------------------------------------------------
def free_port() -> int:
    from llmops.process import free_port as fp

    return fp()


def wait_http(port: int, path: str, timeout: float = 60.0) -> None:
    from llmops.process import http_ok

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(f"http://127.0.0.1:{port}{path}", timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing healthy on port {port}{path}")


def start(argv: list[str], cpus: set[int] | None, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    return proc


async def measure(
    args: argparse.Namespace, fast: int, slow: int, gw: int, gw_pid: int, bare: int | None, bare_pid: int | None
) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {KEY}"}
    results: dict[str, Any] = {}
    # warm up both paths (connections, caches, first-request costs)
    await latency_c1(fast, gw, 200, gateway_requests(200), blocks=1)
    sampler = RssSampler(gw_pid)
    sampler.start()
    d, g = await latency_c1(fast, gw, args.requests, gateway_requests(args.requests))
    results["c1"] = {
        "direct_p50_ms": pct(d, 0.5) * 1e3,
        "direct_p99_ms": pct(d, 0.99) * 1e3,
        "gateway_p50_ms": pct(g, 0.5) * 1e3,
        "gateway_p99_ms": pct(g, 0.99) * 1e3,
    }
    raw_direct = post("/v1/chat/completions", direct_body())
    direct_rps, d_err, _ = await throughput(fast, lambda i: raw_direct, args.concurrency, args.duration)
    requests = gateway_requests(4096)
    gw_rps, g_err, gw_cpu = await throughput(gw, lambda i: requests[i % 4096], args.concurrency, args.duration, gw_pid)
    results["c32"] = {
        "direct_rps": direct_rps,
        "gateway_rps": gw_rps,
        "errors": d_err + g_err,
        "gateway_cpu_us_per_request": gw_cpu,
    }
    # capture at 100% vs off, in alternating blocks of a quarter of the duration (cancels drift on a shared machine)
    captured = gateway_requests(4096, "captured")
    rps: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(4):
        for mode, reqs in (("off", requests), ("on", captured)):
            r, err, c = await throughput(gw, lambda i, q=reqs: q[i % 4096], args.concurrency, args.duration / 4, gw_pid)
            rps[mode].append(r)
            cpu[mode].append(c or 0.0)
            results["c32"]["errors"] += err
    for mode in ("off", "on"):
        results["c32"][f"capture_{mode}_rps"] = statistics.fmean(rps[mode])
        results["c32"][f"capture_{mode}_cpu_us_per_request"] = statistics.fmean(cpu[mode])
    if bare is not None:
        raw = post("/v1/chat/completions", direct_body())
        d, b = await latency_c1(fast, bare, args.requests // 2, [raw], blocks=2)
        results["c1"]["bare_p50_ms"] = pct(b, 0.5) * 1e3
        results["c1"]["bare_direct_p50_ms"] = pct(d, 0.5) * 1e3
        bare_rps, _, bare_cpu = await throughput(bare, lambda i: raw_direct, args.concurrency, args.duration, bare_pid)
        results["c32"]["bare_hop_rps"] = bare_rps
        results["c32"]["bare_hop_cpu_us_per_request"] = bare_cpu
    # streaming: 64 events 20 ms apart
    raw_stream_direct = post("/v1/chat/completions", direct_body(stream=True))
    raw_stream_gw = post("/v1/chat/completions", gateway_body(0, "stream", stream=True), auth)
    d_ttft, g_ttft, gaps, counts = [], [], [], []
    d_conn, g_conn = await Conn.open(slow), await Conn.open(gw)
    await stream_once(d_conn, raw_stream_direct)  # warm-up: pooled connections, first-request costs
    await stream_once(g_conn, raw_stream_gw)
    for _ in range(args.streams):
        t, _ = await stream_once(d_conn, raw_stream_direct)
        d_ttft.append(t)
        t, arrivals = await stream_once(g_conn, raw_stream_gw)
        g_ttft.append(t)
        content = arrivals[1:-1]  # between the role event and [DONE]
        counts.append(len(content))
        gaps += [b - a for a, b in zip(content, content[1:], strict=False)]
    # the same, back to back: one-event streams from the fast engine, so no process sits idle. On this VM a
    # process that slept ~20 ms pays a wake-up on each hop; this isolates what the gateway's code adds.
    raw_short_direct = post("/v1/chat/completions", direct_body(stream=True, max_tokens=1))
    raw_short_gw = post("/v1/chat/completions", gateway_body(0, "bench", stream=True, max_tokens=1), auth)
    warm_d, warm_g = [], []
    fd_conn = await Conn.open(fast)  # the fast engine streams without pauses
    for _ in range(args.requests // 4):
        warm_d.append((await stream_once(fd_conn, raw_short_direct))[0])
        warm_g.append((await stream_once(g_conn, raw_short_gw))[0])
    fd_conn.close()
    if bare is not None:
        b_conn = await Conn.open(bare)
        await stream_once(b_conn, raw_stream_direct)
        b_ttft = [(await stream_once(b_conn, raw_stream_direct))[0] for _ in range(args.streams)]
        results["stream_bare_ttft_ms"] = statistics.median(b_ttft) * 1e3
        b_conn.close()
    d_conn.close()
    g_conn.close()
    results["stream"] = {
        "direct_ttft_ms": statistics.median(d_ttft) * 1e3,
        "gateway_ttft_ms": statistics.median(g_ttft) * 1e3,
        "events_per_stream": sorted(set(counts)),
        "gap_median_ms": statistics.median(gaps) * 1e3,
        "gap_p1_ms": pct(gaps, 0.01) * 1e3,
        "gap_p99_ms": pct(gaps, 0.99) * 1e3,
        "warm_direct_ttft_ms": statistics.median(warm_d) * 1e3,
        "warm_gateway_ttft_ms": statistics.median(warm_g) * 1e3,
    }
    sampler.stop.set()
    sampler.join()
    rss = [s for _, s in sampler.samples]
    results["rss_mb"] = {"start": rss[0] / 2**20, "peak": max(rss) / 2**20, "end": rss[-1] / 2**20}
    return results


async def soak(args: argparse.Namespace, gw: int, gw_pid: int) -> dict[str, Any]:
    """The gateway at ``args.concurrency`` for ``args.soak`` seconds; one line of figures per interval."""
    requests = gateway_requests(4096)
    proc = psutil.Process(gw_pid)
    counts = {"requests": 0, "errors": 0}
    deadline = time.monotonic() + args.soak
    samples: list[dict[str, Any]] = []

    async def worker(k: int) -> None:
        conn, i = await Conn.open(gw), k
        while time.monotonic() < deadline:
            try:
                status, _ = await conn.request(requests[i % 4096])
            except (ConnectionError, httptools.HttpParserError):
                status = 0
                conn.close()
                conn = await Conn.open(gw)
            counts["requests"] += 1
            counts["errors"] += status != 200
            i += args.concurrency
        conn.close()

    async def sampler() -> None:
        started = time.monotonic()
        last = dict(counts)
        print(f"soak: c={args.concurrency} for {args.soak:.0f} s; a line every {args.soak_interval:.0f} s", flush=True)
        print("   min   RSS MB  open files  threads  tasks    req/s  errors (total)", flush=True)
        while (now := time.monotonic()) < deadline:
            await asyncio.sleep(min(args.soak_interval, max(0.0, deadline - now)))
            probe = await Conn.open(gw)  # a new connection each time: an idle keep-alive one gets closed
            _, body = await probe.request(b"GET /bench/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            probe.close()
            sample = {
                "t_s": time.monotonic() - started,
                "rss_mb": proc.memory_info().rss / 2**20,
                "open_files": proc.num_fds(),
                "threads": proc.num_threads(),
                "tasks": orjson.loads(body)["tasks"],
                "rps": (counts["requests"] - last["requests"]) / args.soak_interval,
                "errors": counts["errors"] - last["errors"],
            }
            last = dict(counts)
            samples.append(sample)
            print(
                f"  {sample['t_s'] / 60:5.1f}  {sample['rss_mb']:7.1f}  {sample['open_files']:10d}  "
                f"{sample['threads']:7d}  {sample['tasks']:5d}  {sample['rps']:7,.0f}  {sample['errors']:6d} "
                f"({counts['errors']})",
                flush=True,
            )

    await asyncio.gather(sampler(), *(worker(k) for k in range(args.concurrency)))
    base_t = min(300.0, args.soak / 6)
    base = next((s for s in samples if s["t_s"] >= base_t - 1), samples[0])
    growth = (samples[-1]["rss_mb"] - base["rss_mb"]) / base["rss_mb"]
    return {"seconds": args.soak, "requests": counts["requests"], "errors": counts["errors"], "samples": samples,
            "rss_base_min": base["t_s"] / 60, "rss_growth": growth}  # fmt: skip


def report_soak(r: dict[str, Any], args: argparse.Namespace) -> None:
    ok = lambda cond: "ok  " if cond else "MISS"  # noqa: E731
    first, last = r["samples"][0], r["samples"][-1]
    print("\ngateway soak  (1 uvicorn worker; auth, 90/10 sticky route, prompt rendering, request log on)")
    print(f"  {r['requests']:,} requests at c={args.concurrency} over {r['seconds']:.0f} s")
    print(f"  [{ok(r['errors'] == 0)}] errors: {r['errors']} (target 0)")
    print(
        f"  [{ok(r['rss_growth'] <= 0.10)}] RSS from minute {r['rss_base_min']:.1f} to the end: "
        f"{r['rss_growth']:+.1%} (target <= +10%)"
    )
    print(
        f"  open files {first['open_files']} -> {last['open_files']}, threads {first['threads']} -> "
        f"{last['threads']}, asyncio tasks {first['tasks']} -> {last['tasks']} (first sample -> last)"
    )


def report(r: dict[str, Any], args: argparse.Namespace, log_lines: int) -> None:
    c1, c32, st, rss = r["c1"], r["c32"], r["stream"], r["rss_mb"]
    added50 = c1["gateway_p50_ms"] - c1["direct_p50_ms"]
    added99 = c1["gateway_p99_ms"] - c1["direct_p99_ms"]
    added_ttft = st["gateway_ttft_ms"] - st["direct_ttft_ms"]
    ok = lambda cond: "ok  " if cond else "MISS"  # noqa: E731
    print(
        f"\ngateway overhead  (1 uvicorn worker; auth, 90/10 sticky route, prompt rendering, request log on; pin={args.pin})"
    )
    print(
        f"  c=1  direct  p50 {c1['direct_p50_ms']:.3f} ms  p99 {c1['direct_p99_ms']:.3f} ms   ({args.requests} requests each)"
    )
    print(f"  c=1  gateway p50 {c1['gateway_p50_ms']:.3f} ms  p99 {c1['gateway_p99_ms']:.3f} ms")
    print(
        f"  [{ok(added50 <= 1.0)}] added p50 {added50:.3f} ms (target <= 1 ms)   added p99 {added99:.3f} ms   "
        f"ratio p50 {c1['gateway_p50_ms'] / c1['direct_p50_ms']:.2f}x"
    )
    print(
        f"  c={args.concurrency} direct {c32['direct_rps']:,.0f} req/s   gateway {c32['gateway_rps']:,.0f} req/s   "
        f"ratio {c32['gateway_rps'] / c32['direct_rps']:.2f}   errors {c32['errors']}   ({args.duration:.0f} s each)"
    )
    print(f"  [{ok(c32['gateway_rps'] >= 2000)}] gateway throughput >= 2,000 req/s")
    capture_ratio = c32["capture_on_rps"] / c32["capture_off_rps"]
    print(
        f"  [{ok(capture_ratio >= 0.90)}] capture at 100% {c32['capture_on_rps']:,.0f} req/s vs off "
        f"{c32['capture_off_rps']:,.0f} req/s at c={args.concurrency}: ratio {capture_ratio:.2f} (target >= 0.90); "
        f"gateway CPU per request {c32['capture_on_cpu_us_per_request']:.0f} vs "
        f"{c32['capture_off_cpu_us_per_request']:.0f} us"
    )
    cpu = c32["gateway_cpu_us_per_request"]
    print(
        f"  gateway CPU per request at c={args.concurrency}: {cpu:.0f} us (user+system) -> "
        f"{1e6 / cpu:,.0f} req/s for one uncontended core"
    )
    if "bare_hop_rps" in c32:
        added_bare = c1["bare_p50_ms"] - c1["bare_direct_p50_ms"]
        print(
            f"  floor on this machine now: a bare raw-ASGI + aiohttp hop adds p50 {added_bare:.3f} ms and serves "
            f"{c32['bare_hop_rps']:,.0f} req/s at c={args.concurrency}; the gateway does "
            f"{c32['gateway_rps'] / c32['bare_hop_rps']:.0%} of that; bare hop CPU per request "
            f"{c32['bare_hop_cpu_us_per_request']:.0f} us"
        )
    print(
        f"  [{ok(rss['peak'] <= 200 and rss['end'] - rss['start'] <= 20)}] gateway RSS start {rss['start']:.1f} MB  "
        f"peak {rss['peak']:.1f} MB  end {rss['end']:.1f} MB (target <= 200 MB, flat)"
    )
    print(f"  stream TTFT direct {st['direct_ttft_ms']:.3f} ms  gateway {st['gateway_ttft_ms']:.3f} ms")
    print(f"  [{ok(added_ttft <= 1.0)}] added TTFT {added_ttft:.3f} ms (target <= 1 ms; streams 64 events 20 ms apart)")
    added_warm = st["warm_gateway_ttft_ms"] - st["warm_direct_ttft_ms"]
    print(
        f"  [{ok(added_warm <= 1.0)}] added TTFT back to back {added_warm:.3f} ms (direct {st['warm_direct_ttft_ms']:.3f} ms, "
        f"gateway {st['warm_gateway_ttft_ms']:.3f} ms; one-event streams, no idle gaps)"
    )
    if "stream_bare_ttft_ms" in r:
        print(
            f"  floor: the bare hop streams with TTFT {r['stream_bare_ttft_ms']:.3f} ms "
            f"(adds {r['stream_bare_ttft_ms'] - st['direct_ttft_ms']:.3f} ms)"
        )
    regular = st["events_per_stream"] == [64] and 15 <= st["gap_median_ms"] <= 25
    print(
        f"  [{ok(regular)}] no re-buffering: content events per stream {st['events_per_stream']} (sent 64), "
        f"gap median {st['gap_median_ms']:.2f} ms  p1 {st['gap_p1_ms']:.2f}  p99 {st['gap_p99_ms']:.2f} (sent 20 ms apart)"
    )
    print(f"  request log: {log_lines} records written")


def main() -> None:
    parser = argparse.ArgumentParser(description="Gateway overhead benchmark")
    parser.add_argument("--requests", type=int, default=2000, help="requests per path at concurrency 1")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (run length)")
    parser.add_argument("--streams", type=int, default=10, help="streams per path (64 events 20 ms apart)")
    parser.add_argument("--soak", type=float, default=0.0, help="instead: a soak of this many seconds at c=32")
    parser.add_argument("--soak-interval", type=float, default=60.0, help="seconds between soak samples")
    parser.add_argument("--pin", action="store_true", help="gateway on CPU 0, client and engines on CPU 1")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-hop baseline")
    parser.add_argument("--serve-gateway", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count-tasks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        serve_gateway(args.serve_gateway, args.port, args.count_tasks)
        return
    if args.soak:
        args.no_bare = True
    if args.serve_bare:
        serve_bare(args.serve_bare, args.port)
        return
    py = sys.executable
    gw_cpus = {0} if args.pin else None
    other_cpus = {1} if args.pin else None
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as tmp:
        folder = Path(tmp)
        fast, slow, gw, bare = free_port(), free_port(), free_port(), free_port()
        config = folder / "gateway.yaml"
        log_path = folder / "requests.jsonl"
        config.write_text(gateway_config(fast, slow, log_path))
        fake = str(REPO / "bench" / "fake_upstream.py")
        procs = [
            start([py, fake, "--port", str(fast)], other_cpus, folder / "fast.log"),
            start(
                [py, fake, "--port", str(slow), "--chunks", "64", "--interval-ms", "20"],
                other_cpus,
                folder / "slow.log",
            ),
            start(
                [py, __file__, "--serve-gateway", str(config), "--port", str(gw)] + ["--count-tasks"] * bool(args.soak),
                gw_cpus,
                folder / "gateway.log",
            ),
        ]
        if not args.no_bare:
            urls = f"http://127.0.0.1:{fast},http://127.0.0.1:{slow}"
            argv = [py, __file__, "--serve-bare", urls, "--port", str(bare)]
            procs.append(start(argv, gw_cpus, folder / "bare.log"))
        try:
            wait_http(fast, "/health")
            wait_http(slow, "/health")
            wait_http(gw, "/readyz")
            if not args.no_bare:
                wait_http(bare, "/readyz")
            bare_args = (None, None) if args.no_bare else (bare, procs[3].pid)
            run = soak(args, gw, procs[2].pid) if args.soak else measure(args, fast, slow, gw, procs[2].pid, *bare_args)
            try:
                import uvloop

                results = uvloop.run(run)
            except ImportError:
                results = asyncio.run(run)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        lines = len(log_path.read_text().splitlines()) if log_path.exists() else 0
        if args.soak:
            report_soak(results, args)
            print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
            return
        report(results, args, lines)
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
