"""Online server resident memory per backend, DistilBERT-base-sized, in one run.

What is measured: the real online server - ``azmlinfsrv`` with the catalog's scoring script
(``sdk/distilbert_catalog/serving/score.py``), started by
``distilbert_catalog.runner.endpoints.serve`` as the local endpoint runner starts it, with the
deployment's settings (``WORKER_COUNT=1``, ``GUNICORN_CMD_ARGS=--threads 4``,
``DISTILBERT_BATCH_SIZE=32``) - serving a DistilBERT-base-sized text classifier (6 layers, 768
wide, 30,522-token vocabulary, random weights: 67 M parameters) packaged as an MLflow model with
``distilbert_catalog.mlflow_model.package_model``. One server per backend, chosen through the
deployment's ``DISTILBERT_BACKEND`` variable (``--backends``; default fp32, onnx, int8); fp32 is
the baseline.

Resident memory is the sum of ``VmRSS`` in ``/proc/<pid>/status`` over the server's whole process
tree (the gunicorn master and its worker), read

- ``idle``: right after the server answers its first health probe (model loaded);
- ``warm``: after warm-up requests of mixed length (``--requests`` requests of 1-32 texts, each
  text 1-6 bundled emotion sentences) - the steady state a deployment sits at;
- ``after-long``: after ``--long-requests`` requests of 32 texts of 512 tokens (the longest a
  text is kept), the largest batch a request can make;

and ``peak`` is the sum of each process's ``VmHWM`` (its high-water mark) at the end. The ONNX
graphs are exported before the servers start (as the quality gate does into the MLflow model),
so no export runs inside a measured server. Every request must answer 200, and the backends'
labels for the warm-up texts are compared with fp32's. Ratios are RSS against fp32's, per round
(``--rounds`` fresh servers per backend, the order rotated each round; median and min-max).
The issue's target: ``warm`` <= 1 GiB. Results: ``benchmarks/results/server-memory.json``.
``--model`` serves another text-classification folder instead (a tiny one checks the mechanics);
``--env KEY=VALUE`` adds a deployment variable to every server (e.g. ``MALLOC_ARENA_MAX=2``).

Usage: python benchmarks/bench_server_memory.py [--backends fp32,onnx,int8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import warnings
from pathlib import Path

from bench_common import base_sized_model, mixed_texts, write_result

GIB = 1024 ** 3
TARGET_BYTES = 1 * GIB
DEPLOYMENT_ENV = {"WORKER_COUNT": "1", "DISTILBERT_BATCH_SIZE": "32"}


def status_bytes(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from the parent ids in ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_memory(root: int) -> dict:
    """RSS and peak of the tree, and RSS split by process (master, workers) and by kind
    (anonymous memory vs file pages such as memory-mapped weights and libraries)."""
    pids = process_tree(root)
    return {"rss": sum(status_bytes(p, "VmRSS") for p in pids),
            "peak": sum(status_bytes(p, "VmHWM") for p in pids), "processes": len(pids),
            "rss_by_process": [status_bytes(p, "VmRSS") for p in pids],
            "rss_anon": sum(status_bytes(p, "RssAnon") for p in pids),
            "rss_file": sum(status_bytes(p, "RssFile") for p in pids)}


def long_text(words: list[str], rng: random.Random) -> str:
    return " ".join(rng.choices(words, k=700))  # well past 512 tokens: truncated to 512


def measure(backend: str, mlflow_dir: Path, script: Path, warm_requests: list[list[str]],
            long_requests: list[list[str]], extra_env: dict[str, str]) -> dict:
    from distilbert_catalog.runner.endpoints import serve

    env = {**DEPLOYMENT_ENV, **extra_env, "DISTILBERT_BACKEND": backend}
    with serve(script, mlflow_dir, env=env, startup_timeout=300) as server:
        pid = server.process.pid
        idle = tree_memory(pid)
        labels, failures = [], 0
        for texts in warm_requests:
            status, body = server.invoke({"inputs": {"input_string": texts}}, timeout=300)
            if status != 200:
                failures += 1
                print(f"  {backend}: HTTP {status}: {str(body)[:200]}")
            else:
                labels.extend(a["label"] for a in body)
        warm = tree_memory(pid)
        for texts in long_requests:
            status, body = server.invoke({"inputs": {"input_string": texts}}, timeout=300)
            failures += status != 200
        after_long = tree_memory(pid)
        if failures:
            print(server.log()[-3000:])
    return {"idle_rss": idle["rss"], "warm_rss": warm["rss"], "after_long_rss": after_long["rss"],
            "peak": after_long["peak"], "processes": warm["processes"],
            "warm_rss_by_process": warm["rss_by_process"], "warm_rss_anon": warm["rss_anon"],
            "warm_rss_file": warm["rss_file"], "failures": failures, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="fp32,onnx,int8",
                        help="comma-separated DISTILBERT_BACKEND values; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=1, help="fresh servers per backend")
    parser.add_argument("--requests", type=int, default=12, help="warm-up requests")
    parser.add_argument("--long-requests", type=int, default=2,
                        help="requests of 32 texts of 512 tokens after the warm-up")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra environment variable for the servers (repeatable), "
                             "e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--model", help="a Hugging Face text-classification folder to serve "
                                        "instead (e.g. a tiny one, to check the mechanics)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of the server (the machine is shared)")
    parser.add_argument("--output", help="JSON results file (default: benchmarks/results/)")
    args = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    # the deployment's gunicorn settings; serve() adds its own flags to what the parent has
    os.environ["GUNICORN_CMD_ARGS"] = "--threads 4"

    import distilbert_catalog
    from distilbert_catalog.inference import load_predictor
    from distilbert_catalog.mlflow_model import package_model

    script = Path(distilbert_catalog.__file__).resolve().parent / "serving" / "score.py"
    backends = [b for b in args.backends.split(",") if b]
    extra_env = dict(item.split("=", 1) for item in args.env)
    rng = random.Random(0)
    texts = mixed_texts("text-classification", 32 * args.requests)
    sizes = [rng.choice([1, 2, 4, 8, 16, 32]) for _ in range(args.requests)]
    sizes[0] = 32  # at least one full batch in the warm-up
    warm_requests = [texts[32 * i:32 * i + size] for i, size in enumerate(sizes)]
    words = " ".join(texts).split()
    long_requests = [[long_text(words, rng) for _ in range(32)] for _ in range(args.long_requests)]

    runs: dict[str, list[dict]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else base_sized_model("text-classification",
                                                                      Path(tmp, "model"))
        mlflow_dir = package_model(folder, Path(tmp, "mlflow"), task_name="text-classification",
                                   backend="fp32")
        on_disk = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
        for backend in backends:  # export ONNX graphs into the cache the servers read
            if backend.startswith("onnx"):
                load_predictor(mlflow_dir, backend=backend)
        for r in range(args.rounds):
            for backend in backends[r % len(backends):] + backends[:r % len(backends)]:
                result = measure(backend, mlflow_dir, script, warm_requests, long_requests,
                                 extra_env)
                runs[backend].append(result)
                print(f"round {r + 1} {backend:>9}: idle {result['idle_rss'] / 2**20:6.0f} MiB, "
                      f"warm {result['warm_rss'] / 2**20:6.0f} MiB, after long requests "
                      f"{result['after_long_rss'] / 2**20:6.0f} MiB, peak "
                      f"{result['peak'] / 2**20:6.0f} MiB; warm by process (master first) "
                      f"{[round(b / 2**20) for b in result['warm_rss_by_process']]} MiB, "
                      f"anonymous {result['warm_rss_anon'] / 2**20:.0f} / file "
                      f"{result['warm_rss_file'] / 2**20:.0f} MiB; "
                      f"{result['failures']} failed requests")

    baseline = backends[0]
    summary = {}
    for backend, results in runs.items():
        entry = {"label_agreement_with_" + baseline: statistics.mean(
            a == b for a, b in zip(results[0]["labels"], runs[baseline][0]["labels"]))}
        for key in ("idle_rss", "warm_rss", "after_long_rss", "peak"):
            values = [x[key] for x in results]
            entry[key + "_mib"] = {"median": statistics.median(values) / 2**20,
                                   "min": min(values) / 2**20, "max": max(values) / 2**20}
            if backend != baseline:
                ratios = [x[key] / b[key] for x, b in zip(results, runs[baseline])]
                entry[key + "_ratio"] = {"median": statistics.median(ratios),
                                         "min": min(ratios), "max": max(ratios)}
        entry["failures"] = sum(x["failures"] for x in results)
        entry["warm_within_target"] = entry["warm_rss_mib"]["median"] * 2**20 <= TARGET_BYTES
        summary[backend] = entry

    described = args.model or "DistilBERT-base-sized text classifier"
    print(f"{described} ({on_disk / 2**20:.0f} MiB on disk), "
          f"{args.rounds} round(s), server OMP_NUM_THREADS={args.threads}; target: warm <= 1 GiB")
    for backend, e in summary.items():
        line = (f"{backend:>9}: warm {e['warm_rss_mib']['median']:6.0f} MiB "
                f"({'within' if e['warm_within_target'] else 'OVER'} 1 GiB), after long "
                f"{e['after_long_rss_mib']['median']:6.0f} MiB, peak {e['peak_mib']['median']:6.0f} MiB")
        if backend != baseline:
            ratio = e["warm_rss_ratio"]
            line += (f"; warm RSS {ratio['median']:.2f}x of {baseline} "
                     f"(per round {ratio['min']:.2f}-{ratio['max']:.2f}); labels equal to "
                     f"{baseline}'s on {100 * e['label_agreement_with_' + baseline]:.0f}% of texts")
        print(line)
    write_result({"benchmark": "bench_server_memory", "task": "text-classification",
                  "model": args.model or "DistilBERT-base-sized (768 wide, 6 layers, 30522 "
                                         "vocab), random weights",
                  "model_bytes_on_disk": on_disk, "server_env": {**DEPLOYMENT_ENV,
                  "GUNICORN_CMD_ARGS": "--threads 4", "OMP_NUM_THREADS": str(args.threads),
                  **extra_env},
                  "warm_requests": sizes, "long_requests": args.long_requests,
                  "rounds": args.rounds, "baseline": baseline, "target_warm_rss_mib": 1024,
                  "results": summary,
                  "runs": {b: [{k: v for k, v in x.items() if k != "labels"} for x in rs]
                           for b, rs in runs.items()}},
                 args.output, "server-memory" + ("-given-model" if args.model else "")
                 + "".join(f"-{k}-{v}" for k, v in extra_env.items()))
    failed = {b: e["failures"] for b, e in summary.items() if e["failures"]}
    if failed:
        raise SystemExit(f"requests failed (non-200 answers) per backend: {failed}")


if __name__ == "__main__":
    main()
