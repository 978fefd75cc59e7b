"""Load and soak test: N concurrent clients for T seconds against the real azmlinfsrv (loopback).

Each client loops: a valid request (its answer checked: one answer per input, of the task's
shape) or, with probability ``--malformed``, one of a rotating set of malformed/hostile requests
(must answer 4xx with a message). Reported, as text and as JSON (``--output``):

- requests, throughput, status counts (any 5xx or connection error fails the run: exit 1);
- p50/p99 latency of valid requests;
- resident memory (RSS) of the server's process tree (master + workers) at the start (after a
  warm-up), and at the end; growth beyond ``--rss-growth-mb`` fails the run.

The server runs the catalog's scoring script with a tiny model of the chosen task (``--model`` to
serve your own folder instead). ``--workers`` sets ``WORKER_COUNT`` (gunicorn worker processes)
and ``--threads`` gunicorn threads per worker; compare settings with ``--sweep``.

Usage: python benchmarks/load_soak.py [--task text-classification] [--clients 8] [--seconds 60]
           [--workers 1] [--threads 1] [--sweep] [--output load.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from distilbert_catalog.quickstart import SCORE_SCRIPT
from distilbert_catalog.runner.endpoints import serve

VALID = {
    "text-classification": {"input_string": ["i feel great today", "this is awful news"]},
    "question-answering": {"question": ["What is my name?", "Where do I live?"],
                           "context": ["My name is John and I live in Seattle.",
                                       "My name is Ravi and I live in Hyderabad."]},
    "fill-mask": {"input_string": ["Paris is the [MASK] of France.",
                                   "The [MASK] barked at the mailman."]},
    "token-classification": {"input_string": ["John lives in Seattle.", "Ravi works in Pune."]},
}
MALFORMED = [
    b"{broken", b"", b"[" * 3000 + b"]" * 3000, b'{"inputs": 42}', b'{"inputs": []}',
    b'{"wrong": ["x"]}', b'{"inputs": {"input_string": [3]}}', b"\xff\xfe\x00",
    b'{"inputs": ["x"], "params": {"top_k": 1000000000}}', b'{"inputs": ["x"], "params": [1]}',
]


def tiny_task_model(task: str, out: Path) -> Path:
    """A tiny random-init DistilBERT folder with ``task``'s head (mechanics, not quality)."""
    from distilbert_catalog.tiny import build_tiny_model, with_task_head

    return with_task_head(build_tiny_model(out / "tiny"), task, out / task)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB (Linux /proc)."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,rss=", "-e"], capture_output=True, text=True,
                         check=True).stdout
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in out.split("\n"):
        if line.strip():
            p, pp, r = (int(x) for x in line.split())
            children.setdefault(pp, []).append(p)
            rss[p] = r
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total / 1024


def post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def check_valid(task: str, payload: dict, status: int, raw: bytes) -> str | None:
    if status != 200:
        return f"valid request answered {status}: {raw[:200]!r}"
    body = json.loads(raw)
    n = len(next(iter(payload.values())))
    if not isinstance(body, list) or len(body) != n:
        return f"expected {n} answers, got {str(body)[:200]}"
    shape = {"text-classification": lambda a: {"label", "score"} <= set(a),
             "question-answering": lambda a: {"score", "start", "end", "answer"} <= set(a),
             "fill-mask": lambda a: "0" in a,
             "token-classification": lambda a: isinstance(a, list)}[task]
    if not all(shape(a) for a in body):
        return f"answer of the wrong shape: {str(body)[:200]}"
    return None


def soak(url: str, task: str, clients: int, seconds: float, malformed: float,
         seed: int = 0) -> dict:
    stats = {"valid": 0, "malformed": 0, "status": {}, "errors": [], "latency_ms": []}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    valid_body = {"inputs": VALID[task]}

    def client(index: int) -> None:
        rng = random.Random(seed + index)
        while time.monotonic() < stop_at:
            bad = rng.random() < malformed
            body = rng.choice(MALFORMED) if bad else json.dumps(valid_body).encode()
            start = time.perf_counter()
            try:
                status, raw = post(url, body, timeout=60)
            except OSError as exc:  # connection refused/reset, timeout
                with lock:
                    stats["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - start) * 1e3
            problem = None
            if bad and not (400 <= status < 500 and json.loads(raw).get("error")):
                problem = f"malformed request answered {status}: {raw[:200]!r}"
            elif not bad:
                problem = check_valid(task, VALID[task], status, raw)
            with lock:
                stats["status"][status] = stats["status"].get(status, 0) + 1
                stats["malformed" if bad else "valid"] += 1
                if not bad:
                    stats["latency_ms"].append(elapsed)
                if problem and len(stats["errors"]) < 20:
                    stats["errors"].append(problem)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    lat = sorted(stats["latency_ms"])
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))
    total = stats["valid"] + stats["malformed"]
    return {"requests": total, "valid": stats["valid"], "malformed": stats["malformed"],
            "requests_per_s": total / wall, "valid_per_s": stats["valid"] / wall,
            "status": {str(k): v for k, v in sorted(stats["status"].items())},
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "errors": stats["errors"]}


def run_setting(model: Path, task: str, args, workers: int, threads: int) -> dict:
    env = {"WORKER_COUNT": str(workers), "OMP_NUM_THREADS": str(args.torch_threads),
           "MKL_NUM_THREADS": str(args.torch_threads)}
    if threads > 1:
        env["GUNICORN_CMD_ARGS"] = f"--threads {threads}"
    with serve(SCORE_SCRIPT, model, env=env) as server:
        soak(server.url, task, args.clients, min(5.0, args.seconds), args.malformed, seed=99)
        rss_start = tree_rss_mb(server.process.pid)
        result = soak(server.url, task, args.clients, args.seconds, args.malformed)
        rss_end = tree_rss_mb(server.process.pid)
        log = server.log()
    five = sum(v for k, v in result["status"].items() if k.startswith("5"))
    result.update(task=task, workers=workers, threads=threads, clients=args.clients,
                  seconds=args.seconds, torch_threads=args.torch_threads,
                  rss_start_mb=round(rss_start, 1), rss_end_mb=round(rss_end, 1),
                  rss_growth_mb=round(rss_end - rss_start, 1), status_5xx=five,
                  tracebacks_in_log=log.count("Traceback"))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="text-classification", choices=sorted(VALID))
    p.add_argument("--model", help="a model folder of --task (default: a tiny random-init one)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--malformed", type=float, default=0.3, help="share of malformed requests")
    p.add_argument("--workers", type=int, default=1, help="WORKER_COUNT")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    p.add_argument("--torch-threads", type=int, default=1, help="OMP/MKL threads per worker")
    p.add_argument("--sweep", action="store_true",
                   help="try workers x threads in {1,2} x {1,4} (each --seconds long)")
    p.add_argument("--rss-growth-mb", type=float, default=50.0)
    p.add_argument("--output", help="write the results as JSON here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else tiny_task_model(args.task, Path(tmp))
        settings = ([(w, t) for w in (1, 2) for t in (1, 4)] if args.sweep
                    else [(args.workers, args.threads)])
        results = [run_setting(model, args.task, args, w, t) for w, t in settings]

    failed = False
    for r in results:
        print(f"{r['task']}: WORKER_COUNT={r['workers']} threads={r['threads']} "
              f"clients={r['clients']} {r['seconds']:g}s: {r['requests']} requests "
              f"({r['valid']} valid, {r['malformed']} malformed), {r['requests_per_s']:.1f} req/s, "
              f"valid p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, status {r['status']}, "
              f"RSS {r['rss_start_mb']} -> {r['rss_end_mb']} MiB")
        for e in r["errors"][:5]:
            print("   error:", e)
        if (r["status_5xx"] or r["errors"] or r["tracebacks_in_log"]
                or r["rss_growth_mb"] > args.rss_growth_mb):
            failed = True
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print("FAIL" if failed else "OK: zero 5xx, every valid answer checked, RSS within bounds")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
