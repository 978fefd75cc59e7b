"""Batch scoring throughput: the batch scorer against scoring rows one at a time, in one run.

Any catalog task (``--task``): input rows are the task's own example request, with random words
from the bundled sample texts put in front of the first input column so lengths vary (5-120
words by default), written as jsonl files. The model is ``--model`` (an MLflow or Hugging Face
folder of that task) or, by default, a DistilBERT-base-sized model with random weights built here
with the task's head. Two ways to score the same files with the same predictor:

- ``one-at-a-time``: read each file, check each row (``Task.validate_row``), one
  ``Predictor.predict`` call per row — a scoring loop that handles rows one by one
- ``batch``: :class:`BatchScorer` on mini-batches of files — every good row of a mini-batch in one
  length-sorted, per-batch padded predictor call (what ``batch_score.py`` runs in each worker)

Rounds are interleaved (the order alternates each round); rows/s is reported as the median over
rounds with its spread (min-max), and the ratio of medians is printed and written as JSON
(``--output``). Compare ratios, not absolute figures, across machines. Worker start-up
(importing torch, loading the model) is not part of either figure.

Usage: python benchmarks/bench_batch.py [--task fill-mask] [--rows 256] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer, DistilBertConfig

from distilbert_catalog.inference import load_predictor
from distilbert_catalog.serving.batch import BatchScorer, file_items
from distilbert_catalog.tasks import get_task
from distilbert_catalog.tiny import build_tiny_model, sample_texts

LENGTHS = {"mixed": [5, 8, 12, 20, 30, 60, 120], "short": [5, 8, 12, 16, 20, 30]}


def random_model(task, folder: Path) -> Path:
    """A DistilBERT-base-sized model (6 layers, 768 hidden) with the task's head, random weights."""
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(folder / "tokenizer"))
    kwargs = {k: v for k, v in task.model_kwargs(["l0", "l1", "l2", "l3", "l4", "l5"]).items()
              if k != "ignore_mismatched_sizes"} if _labelled(task) else {}
    config = DistilBertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              **kwargs)
    torch.manual_seed(0)
    model = task.model_class().from_config(config)
    out = folder / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _labelled(task) -> bool:
    try:
        return bool(task.model_kwargs(["a", "b"]))
    except Exception:  # noqa: BLE001 - tasks without labels may reject label lists
        return False


def write_files(task, folder: Path, rows: int, files: int, lengths: list[int], seed: int = 0):
    rng = random.Random(seed)
    words = " ".join(sample_texts()).split()
    example = pd.DataFrame(task.example_request()).to_dict("records")
    first = task.input_columns[0]
    records = []
    for i in range(rows):
        row = dict(example[i % len(example)])
        row[first] = " ".join(rng.choices(words, k=rng.choice(lengths))) + " " + row[first]
        records.append(row)
    folder.mkdir(parents=True)
    paths = []
    for f in range(files):
        path = folder / f"part-{f:03d}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records[f::files]))
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="text-classification")
    parser.add_argument("--model", help="MLflow or Hugging Face model folder of --task")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--mini-batch-size", type=int, default=8, help="files per mini-batch")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lengths", choices=sorted(LENGTHS), default="mixed")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--output", default="bench_batch.json", help="JSON results file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    task = get_task(args.task)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or random_model(task, tmp)
        predictor = load_predictor(model, task_name=args.task, backend="fp32",
                                   batch_size=args.batch_size)
        paths = write_files(task, tmp / "inputs", args.rows, args.files, LENGTHS[args.lengths])
        scorer = BatchScorer(predictor)
        mini_batches = [paths[i:i + args.mini_batch_size]
                        for i in range(0, len(paths), args.mini_batch_size)]

        def batch() -> int:
            return sum(len(scorer(mb)) for mb in mini_batches)

        def one_at_a_time() -> int:
            n = 0
            for path in paths:
                for item in file_items(path, task):
                    if item.error is None:
                        predictor.predict([item.values], scorer.params)
                    n += 1
            return n

        methods = {"one-at-a-time": one_at_a_time, "batch": batch}
        for fn in methods.values():  # warm-up: first-call costs out of the figures
            fn()
        rates: dict[str, list[float]] = {name: [] for name in methods}
        for r in range(args.rounds):
            for name in (list(methods) if r % 2 == 0 else list(methods)[::-1]):
                start = time.perf_counter()
                rows = methods[name]()
                rates[name].append(rows / (time.perf_counter() - start))

    summary = {name: {"rows_per_s_median": statistics.median(v), "min": min(v), "max": max(v),
                      "rounds": v} for name, v in rates.items()}
    ratio = summary["batch"]["rows_per_s_median"] / summary["one-at-a-time"]["rows_per_s_median"]
    result = {"task": args.task, "model": str(args.model or "random DistilBERT-base-sized"),
              "rows": args.rows, "files": args.files, "mini_batch_size": args.mini_batch_size,
              "batch_size": args.batch_size, "lengths": args.lengths,
              "threads": torch.get_num_threads(), "rounds": args.rounds,
              "results": summary, "ratio_batch_vs_one_at_a_time": ratio}
    for name, s in summary.items():
        print(f"{name:>14}: {s['rows_per_s_median']:8.1f} rows/s  "
              f"(min {s['min']:.1f}, max {s['max']:.1f}, {args.rounds} rounds)")
    print(f"ratio batch / one-at-a-time: {ratio:.2f}x  ({args.task}, {args.rows} rows, "
          f"{torch.get_num_threads()} threads)")
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
