"""Distributed fine-tuning speed: 1 process against 2 (PyTorch DDP, gloo) on this machine.

Both run the text-classification fine-tune component through the local runner, as
``distilbert-catalog run ... --process-count N`` does: ``1-process`` (the baseline) with
``per_device_train_batch_size`` = ``--global-batch`` and ``OMP_NUM_THREADS`` = ``--threads``;
``2-processes`` under ``torch.distributed.run`` with half that batch per process and
``--threads`` / 2 threads each, so both train the same global batches of the same examples on
the same cores. ``1-process-1-thread`` (one process, one thread) shows how much of a difference
is the threads rather than the processes. Speed is the Trainer's ``train_samples_per_second`` (global samples over the
``train()`` call, in metrics.json); ``wall_s`` adds what a user also waits for (process start,
data, model load, saving). Rounds are interleaved, the order rotated each round; the ratio is
taken within each round.

Also measured, apart: the per-step communication cost, i.e. one all-reduce of a buffer the size
of the model's gradients between 2 gloo processes on loopback (median of ``--reps``), which DDP
pays every optimiser step on top of the compute.

Usage: python benchmarks/bench_ddp.py [--tiny] [--max-steps 8] [--rounds 2] [--threads 2]
Results: ``benchmarks/results/ddp.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import write_result

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "components" / "finetune" / "text_classification" / "spec.yaml"

ALL_REDUCE = """
import json, os, statistics, sys, time
import torch, torch.distributed as dist
dist.init_process_group("gloo")
numel, reps = int(sys.argv[1]), int(sys.argv[2])
grad = torch.ones(numel)
dist.all_reduce(grad)  # warm-up: connections, buffers
seconds = []
for _ in range(reps):
    dist.barrier()
    started = time.perf_counter()
    dist.all_reduce(grad)
    seconds.append(time.perf_counter() - started)
if dist.get_rank() == 0:
    print(json.dumps({"median_s": statistics.median(seconds), "min_s": min(seconds),
                      "max_s": max(seconds)}))
"""


def finetune(model: str, processes: int, threads: int, args, out: Path) -> dict:
    from distilbert_catalog.runner.component import run_component
    from distilbert_catalog.samples import sample_dir
    from distilbert_catalog.tracking import child_env

    inputs = {"model_name": model, "train_data": str(sample_dir("emotion")),
              "max_steps": args.max_steps, "learning_rate": 1e-4, "precision": "fp32",
              "per_device_train_batch_size": args.global_batch // processes, "seed": 0}
    env = {**child_env(out / "mlruns"), "OMP_NUM_THREADS": str(threads)}
    started = time.monotonic()
    outputs = run_component(SPEC, inputs, out, env=env, stream=io.StringIO(),
                            distribution={"process_count_per_instance": processes})
    wall = time.monotonic() - started
    record = json.loads((outputs["metrics"] / "metrics.json").read_text())
    assert record["config"]["world_size"] == processes
    return {"samples_per_second": record["metrics"]["train_samples_per_second"],
            "wall_s": round(wall, 2), "threads_per_process": threads}


def all_reduce_seconds(numel: int, reps: int, work: Path) -> dict:
    from distilbert_catalog.runner.distributed import Distribution, run_distributed

    script = work / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    log = io.StringIO()
    code, message = run_distributed([sys.executable, str(script), str(numel), str(reps)],
                                    Distribution(2), cwd=work,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"}, stream=log)
    assert code == 0, message
    line = next(line for line in log.getvalue().splitlines() if '"median_s"' in line)
    return json.loads(line.split("]:", 1)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny random DistilBERT")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reps", type=int, default=20, help="timed all-reduces")
    parser.add_argument("--threads", type=int, default=2, help="cores both methods share")
    parser.add_argument("--output", help="JSON results file (default: benchmarks/results/)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.tiny:
            from distilbert_catalog.tiny import build_tiny_model

            model = str(build_tiny_model(work / "tiny"))
        else:
            from distilbert_catalog.pretrained import pretrained_distilbert

            model = str(pretrained_distilbert())
        methods = {"1-process": (1, args.threads), "2-processes": (2, max(1, args.threads // 2)),
                   "1-process-1-thread": (1, 1)}
        runs: dict[str, list[dict]] = {name: [] for name in methods}
        ratios: dict[str, list[float]] = {name: [] for name in methods if name != "1-process"}
        for round_ in range(args.rounds):
            shift = round_ % len(methods)
            names = list(methods)[shift:] + list(methods)[:shift]
            for name in names:
                runs[name].append(finetune(model, *methods[name], args,
                                           work / f"{name}-{round_}"))
                print(f"round {round_ + 1} {name}: {runs[name][-1]}", flush=True)
            for name in ratios:
                ratios[name].append(runs[name][-1]["samples_per_second"]
                                    / runs["1-process"][-1]["samples_per_second"])

        from transformers import AutoModelForSequenceClassification

        numel = sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=6).parameters())
        communication = all_reduce_seconds(numel, args.reps, work)

    summary = {name: {"samples_per_second_median": statistics.median(
                          r["samples_per_second"] for r in rs),
                      "samples_per_second": [r["samples_per_second"] for r in rs],
                      "wall_s": [r["wall_s"] for r in rs],
                      "threads_per_process": rs[0]["threads_per_process"]}
               for name, rs in runs.items()}
    step_seconds = args.global_batch / summary["2-processes"]["samples_per_second_median"]
    result = {
        "benchmark": "ddp", "baseline": "1-process", "model": "tiny" if args.tiny else
        "pretrained offline DistilBERT (MiniLM-L6 weights)", "max_steps": args.max_steps,
        "global_batch": args.global_batch, "results": summary,
        "ratio_to_1_process": {name: {"median": statistics.median(r), "min": min(r),
                                      "max": max(r), "per_round": r}
                               for name, r in ratios.items()},
        "all_reduce": {"gradient_values": numel, "bytes": numel * 4, **communication,
                       "share_of_2_process_step": communication["median_s"] / step_seconds},
    }
    for name, values in summary.items():
        print(f"{name}: {values['samples_per_second_median']:.1f} samples/s "
              f"(rounds {values['samples_per_second']}), wall {values['wall_s']} s")
    for name, r in ratios.items():
        print(f"{name} / 1-process: {statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})")
    print(f"all-reduce of {numel * 4 / 1e6:.1f} MB of "
          f"gradients: {communication['median_s'] * 1e3:.1f} ms per step "
          f"({result['all_reduce']['share_of_2_process_step']:.0%} of a 2-process step)")
    write_result(result, args.output, "ddp")


if __name__ == "__main__":
    main()
