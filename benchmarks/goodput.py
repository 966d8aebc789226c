"""Goodput against a rate-limited service: adaptive windows side by side.

    python benchmarks/goodput.py                       # both services, 5 runs each, medians
    python benchmarks/goodput.py --runs 3 --service sim
    python benchmarks/goodput.py --runs 3 --service nginx

Two services, both holding C = 20 calls at a time and refusing the rest:

* ``sim``: ``wave_executor.testing.RateLimitedService`` in process, 10 ms a
  call, a refusal after 1 ms (a fast 429);
* ``nginx``: a real HTTP server on loopback, started and stopped here: nginx
  (``apt-get install nginx``) with ``limit_conn 20`` and
  ``limit_conn_status 429`` in front of a backend (a small asyncio HTTP
  server in a subprocess) that answers each request after 10-20 ms
  (uniform); the client
  is a minimal HTTP/1.1 client on ``asyncio.open_connection``, one
  connection per request.

2,000 requests must all succeed; a refused request is retried at once.
Variants, each starting from the same cold state:

* ``fixed-20``: a fixed window of 20, the ideal (it is told C);
* ``fixed-100``: a fixed window of 100;
* ``0.3.0``: wave-executor 0.3.0's AdaptiveSemaphore(initial=100, max_val=100),
  run in ``benchmarks/.venv-0.3.0`` (``./benchmarks/setup_030_venv.sh``);
* ``ours``: our AdaptiveSemaphore(100, max_val=100), fed each outcome
  (it slow-starts from 10);
* ``ours-dag``: the same 2,000 calls as tasks of one DAGExecutor run, cap
  100, adaptive window on, retries on overload without delay;
* ``fixed-20-dag`` (not run by default): the same DAG run with a fixed window
  of 20, to tell the DAG runtime's own cost from the adaptive window's.

Each round runs every variant once, each in a fresh process, every other
round in reverse order, so that load on a shared machine hits them alike.
Reported, as medians over the rounds with their ranges: goodput (successful
calls per second, wall clock), its share of fixed-20's in the same round,
and refused attempts per 100 successful calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fresh import V030_PYTHON, run_fresh

HERE = Path(__file__).resolve().parent
TESTING = HERE.parent / "src" / "wave_executor" / "testing.py"
CALLS, CAPACITY, SERVICE_TIME, REJECT_AFTER = 2000, 20, 0.010, 0.001
#: The real backend answers after a uniform draw in this range (seconds).
REAL_SERVICE_TIME = (0.010, 0.020)


NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    limit_conn_zone $binary_remote_addr zone=per_client:1m;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            limit_conn per_client {capacity};
            limit_conn_status 429;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

BACKEND = """
import asyncio, random, sys

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            if not head:
                break
            await asyncio.sleep(random.uniform(float(sys.argv[2]), float(sys.argv[3])))
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


class HTTPRefused(Exception):
    """A 429 from the real server (``status`` makes it an overload signal)."""

    status = 429


class HTTPService:
    """The nginx front as a callable service, counting what it answered."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.served = 0
        self.refused = 0

    async def call(self, payload: Any = None) -> Any:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            status_line = await reader.readline()
            await reader.read()  # headers and body, up to the server's close
        finally:
            writer.close()
        status = int(status_line.split()[1])
        if status == 429:
            self.refused += 1
            raise HTTPRefused("HTTP 429")
        if status != 200:
            raise RuntimeError(f"unexpected HTTP {status}")
        self.served += 1
        return payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def nginx_in_front() -> Iterator[int]:
    """Start the backend and nginx on loopback; yield nginx's port; stop both."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx not found: apt-get install nginx (or use --service sim)")
    with tempfile.TemporaryDirectory(prefix="goodput-nginx-") as tmp:
        backend_port, port = free_port(), free_port()
        backend = subprocess.Popen(
            [sys.executable, "-c", BACKEND, str(backend_port), *map(str, REAL_SERVICE_TIME)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert backend.stdout is not None
        backend.stdout.readline()  # "ready"
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=tmp, backend=backend_port, port=port, capacity=CAPACITY)
        )
        server = subprocess.Popen([nginx, "-p", tmp, "-c", str(conf), "-g", "daemon off;"])
        try:
            for _ in range(200):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError("nginx did not start: " + (Path(tmp) / "error.log").read_text())
            yield port
        finally:
            server.terminate()
            backend.terminate()
            server.wait(10)
            backend.wait(10)


def make_service(kind: str, port: int) -> tuple[Any, type[BaseException]]:
    """The service to call and the exception that means "refused"."""
    if kind == "nginx":
        return HTTPService(port), HTTPRefused
    kit = load_testing_kit()
    return kit.RateLimitedService(CAPACITY, SERVICE_TIME, REJECT_AFTER), kit.OverloadedError


def load_testing_kit() -> Any:
    """Our simulated service, loaded by path so this also runs under 0.3.0's venv."""
    spec = importlib.util.spec_from_file_location("_wave_testing_kit", TESTING)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def through_semaphore(
    sem: Any, report_outcomes: bool, kind: str, port: int
) -> dict[str, float]:
    service, refused = make_service(kind, port)

    async def one(k: int) -> None:
        while True:
            async with sem:
                try:
                    await service.call(k)
                except refused:
                    if report_outcomes:
                        sem.record_overload()
                    continue
                if report_outcomes:
                    sem.record_success()
                return

    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(CALLS)))
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "served": service.served, "refused": service.refused}


async def through_dag(
    kind: str, port: int, cap: int = 100, adaptive: bool = True
) -> dict[str, float]:
    from wave_executor import DAGExecutor, RetryPolicy, WaveConfig

    service, _ = make_service(kind, port)

    async def call(task_id: int, spec: Any) -> Any:
        return await service.call(task_id)

    config = WaveConfig(
        max_parallel_per_wave=cap,
        adaptive_batch_window=adaptive,
        retry_policy=RetryPolicy(max_retries=10_000, backoff_factor=0),
        circuit_breaker_enabled=False,
    )
    start = time.perf_counter()
    result = await DAGExecutor(config).execute(dict.fromkeys(range(CALLS)), {}, call)
    elapsed = time.perf_counter() - start
    assert result.total_successful == CALLS
    return {"seconds": elapsed, "served": service.served, "refused": service.refused}


def run_variant(name: str, kind: str, port: int) -> dict[str, float]:
    from wave_executor import AdaptiveSemaphore

    def semaphore(sem: Any, report: bool) -> dict[str, float]:
        return asyncio.run(through_semaphore(sem, report, kind, port))

    variants: dict[str, Callable[[], dict[str, float]]] = {
        "fixed-20": lambda: semaphore(AdaptiveSemaphore(20, adaptive=False), False),
        "fixed-100": lambda: semaphore(AdaptiveSemaphore(100, adaptive=False), False),
        "0.3.0": lambda: semaphore(AdaptiveSemaphore(100, min_val=2, max_val=100), False),
        "ours": lambda: semaphore(AdaptiveSemaphore(100, max_val=100), True),
        "ours-dag": lambda: asyncio.run(through_dag(kind, port)),
        "fixed-20-dag": lambda: asyncio.run(through_dag(kind, port, 20, adaptive=False)),
    }
    return variants[name]()


def measure(name: str, kind: str, port: int) -> dict[str, float]:
    """One run in a fresh process (0.3.0's own interpreter for 0.3.0)."""
    python = V030_PYTHON if name == "0.3.0" else sys.executable
    args = ("--one", name, "--service", kind, "--port", str(port))
    result: dict[str, float] = run_fresh(python, __file__, *args)
    return result


def table(kind: str, variants: list[str], runs: int, port: int) -> None:
    """Run the variants interleaved (one run of each per round), so that load on a
    shared machine hits them alike; report medians and ranges, and each variant's
    share of fixed-20 taken round by round."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for round_ in range(runs):
        # Every other round in reverse order, so that a drift in load within a round
        # does not always favour the same variant.
        for name in variants if round_ % 2 == 0 else variants[::-1]:
            results[name].append(measure(name, kind, port))
    if kind == "sim":
        service = f"C={CAPACITY}, {SERVICE_TIME * 1000:g} ms a call, in-process simulation"
    else:
        low, high = (t * 1000 for t in REAL_SERVICE_TIME)
        service = f"C={CAPACITY}, {low:g}-{high:g} ms a call, nginx limit_conn on loopback"
    print(f"{CALLS} calls, {service}, {runs} interleaved rounds, medians (min-max)")
    print()
    print("| variant | goodput (calls/s) | share of fixed-20 | refused per 100 successes |")
    print("|---|---:|---:|---:|")
    ideal = [r["served"] / r["seconds"] for r in results.get("fixed-20", [])]
    for name, rs in results.items():
        goodputs = [r["served"] / r["seconds"] for r in rs]
        refused = [100 * r["refused"] / r["served"] for r in rs]
        cells = [f"{statistics.median(goodputs):,.0f} ({min(goodputs):,.0f}-{max(goodputs):,.0f})"]
        if ideal:  # the share in each round, against that round's fixed-20
            shares = [g / i for g, i in zip(goodputs, ideal, strict=True)]
            cells.append(f"{statistics.median(shares):.1%} ({min(shares):.1%}-{max(shares):.1%})")
        else:
            cells.append("-")
        cells.append(f"{statistics.median(refused):.2f} ({min(refused):.2f}-{max(refused):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--service", choices=("sim", "nginx", "both"), default="both")
    parser.add_argument("--variants", default="fixed-20,fixed-100,0.3.0,ours,ours-dag")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_variant(args.one, args.service, args.port)))
        return
    variants = args.variants.split(",")
    if "0.3.0" in variants and not V030_PYTHON.exists():
        print("(no benchmarks/.venv-0.3.0: run benchmarks/setup_030_venv.sh for 0.3.0)")
        variants.remove("0.3.0")
    if args.service in ("sim", "both"):
        table("sim", variants, args.runs, 0)
    if args.service in ("nginx", "both"):
        with nginx_in_front() as port:
            table("nginx", variants, args.runs, port)


if __name__ == "__main__":
    main()
