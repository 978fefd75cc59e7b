"""Extractive QA serving speed and answer quality per backend, against a plain baseline, in one run.

The model is a fine-tuned QA model (``--model``: the MLflow or Hugging Face folder the
extractive-qa recipe of docs/question-answering.md writes). The requests are SQuAD-like question/context pairs of mixed length:
``--requests`` rows of the bundled sample's test split (84 questions; contexts from 60 to 700
tokens). One run does three things:

1. **Quality gate** on the validation split (:mod:`distilbert_catalog.quality_gate`, as the
   extractive-qa pipeline's gate step): every backend against fp32, F1 tolerance ``--tolerance``;
   ``auto`` then serves the fastest that passed.
2. **Speed**, in ``--rounds`` interleaved rounds (the order rotates each round):

   - ``baseline``: plain transformers the usual way - eager fp32, windows of 384 tokens with a
     stride of 128, every window padded to 384, batches of 8, *only the forward passes timed*
     (tokenisation and answer extraction are free for it);
   - ``catalog-<backend>``: ``Predictor.predict`` end to end (tokenisation, length-sorted batches cut
     by ``plan_batches`` and padded per batch, the backend's forward pass, answer extraction), for fp32 and each backend,
     and ``auto``.

   Reported: requests/s per method (median over rounds, with min-max) and each catalog method's
   speed-up over the baseline: the median of the per-round ratios, with their min-max.
3. **Quality on the test split**: SQuAD v2 F1 and EM of fp32, of each backend and of ``auto``,
   the difference in points from fp32 and how many answers differ.

Results are printed and written as JSON (``--output``). Compare ratios across machines, never
absolute figures.

Usage: python benchmarks/bench_qa.py --model out/qa/finetune/mlflow_model_folder [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

import distilbert_catalog as dc
from distilbert_catalog.hardware import cpu_description, describe
from distilbert_catalog.inference import load_predictor
from distilbert_catalog.samples import sample_dir
from distilbert_catalog.tasks import get_task

WINDOW, STRIDE, BASELINE_BATCH = 384, 128, 8


def baseline_forward(model, tokenizer, rows: list[dict]):
    """Windows padded to 384, batches of 8; returns a function timing only the forward passes."""
    encoded = tokenizer([r["question"] for r in rows], [r["context"] for r in rows],
                        truncation="only_second", max_length=WINDOW, stride=STRIDE,
                        return_overflowing_tokens=True, padding="max_length",
                        return_tensors="pt")
    batches = [{k: encoded[k][i:i + BASELINE_BATCH] for k in ("input_ids", "attention_mask")}
               for i in range(0, len(encoded["input_ids"]), BASELINE_BATCH)]

    def run() -> float:
        seconds = 0.0
        with torch.inference_mode():
            for batch in batches:
                started = time.perf_counter()
                model(**batch)
                seconds += time.perf_counter() - started
        return seconds

    return run, len(encoded["input_ids"])


def catalog_tokens(predictor, rows: list[dict], params) -> dict[str, int]:
    """Tokens the catalog's forward passes see for ``rows``: real ones and padded positions.

    Against the baseline's windows x 384 positions, this is the work length sorting and planned
    batches save; what is left is the forward pass's own speed (the backends)."""
    counts = {"real": 0, "padded": 0, "batches": 0}
    forward = predictor.forward_fn

    def counting(batch):
        counts["real"] += int(batch["attention_mask"].sum())
        counts["padded"] += batch["attention_mask"].numel()
        counts["batches"] += 1
        return forward(batch)

    predictor.forward_fn = counting
    try:
        predictor.predict(rows, params)
    finally:
        predictor.forward_fn = forward
    return counts


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="fine-tuned QA model (MLflow or HF folder)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--gate-rounds", type=int, default=3, help="the gate's timed rounds")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default="benchmarks/results/qa.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = get_task("question-answering")
    data = sample_dir("squad_v2")
    settings = dict(max_seq_length=WINDOW, doc_stride=STRIDE)
    work = Path(tempfile.mkdtemp(prefix="bench-qa-"))

    # 1. the quality gate on validation, as the pipeline runs it
    source = {"mlflow_model_path" if (Path(args.model) / "MLmodel").exists()
              else "pytorch_model_path": args.model}
    gate = dc.gate(task.name, output_dir=work, **source, test_data=str(data),
                   test_split="validation", tolerance=args.tolerance, rounds=args.gate_rounds,
                   **settings)
    gated = work / "mlflow_model_folder"
    record = gate["details"]["gate"]
    print(f"gate (validation, {record['examples']} questions, F1 tolerance {args.tolerance}): "
          + ", ".join(f"{c['backend']} {c['quality_delta_points']:+.2f} pt "
                      f"({c['answers_changed']} answers changed) {c['speedup']:.2f}x "
                      f"{'kept' if c['passed'] else 'rejected'}"
                      for c in record["candidates"]) + f" -> auto = {record['chosen']}")

    # 2. speed on mixed-length requests
    rows = [{"question": r["question"], "context": r["context"]}
            for r in map(json.loads, (data / "test.jsonl").read_text().splitlines())]
    random.Random(0).shuffle(rows)
    rows = rows[:args.requests]
    backends = ["fp32", *(c["backend"] for c in record["candidates"] if c["backend"] != "fp32")]
    predictors = {f"catalog-{b}": load_predictor(gated, backend=b, batch_size=32)
                  for b in backends}
    predictors["catalog-auto"] = load_predictor(gated, backend="auto", batch_size=32)
    params = task.parse_params({})
    reference = load_predictor(gated, backend="fp32")
    baseline, windows = baseline_forward(reference.model, reference.tokenizer, rows)
    tokens = catalog_tokens(reference, rows, params)
    methods = {"baseline": baseline,
               **{name: (lambda p=p: timed(lambda: p.predict(rows, params)))
                  for name, p in predictors.items()}}
    for fn in methods.values():  # warm-up: thread pools, allocator, ONNX Runtime arenas
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            seconds[name].append(methods[name]())
    ratios = {name: [b / s for b, s in zip(seconds["baseline"], seconds[name])]
              for name in names if name != "baseline"}

    # 3. quality on the test split: every backend and auto against fp32
    quality, answers = {}, {}
    for backend in (*backends, "auto"):  # fp32 first: the others are compared with it
        metrics = dc.evaluate(task.name, output_dir=work / f"test-{backend}",
                              mlflow_model_path=str(gated), test_data=str(data), backend=backend,
                              **settings)["metrics"]
        answers[backend] = [row["prediction"] for row in map(json.loads, (
            work / f"test-{backend}" / "predictions.jsonl").read_text().splitlines())]
        quality[f"catalog-{backend}"] = {
            **{k: round(metrics[k], 2) for k in ("exact", "f1")},
            "f1_delta_points": round(metrics["f1"] - quality.get("catalog-fp32", {}).get(
                "f1", metrics["f1"]), 2),
            "answers_changed": sum(a != b for a, b in zip(answers[backend], answers["fp32"]))}
    delta = quality["catalog-auto"]["f1_delta_points"]
    changed = quality["catalog-auto"]["answers_changed"]

    report = {
        "benchmark": "question-answering", "model": str(args.model), "cpu": cpu_description(),
        "torch_threads": torch.get_num_threads(), "requests": len(rows),
        "baseline_windows": windows, "baseline_positions": windows * WINDOW,
        "catalog_tokens": tokens, "rounds": args.rounds,
        "auto_backend": predictors["catalog-auto"].backend, "gate": record,
        "requests_per_s": {name: {"median": round(len(rows) / statistics.median(s), 2),
                                  "range": [round(len(rows) / max(s), 2),
                                            round(len(rows) / min(s), 2)]}
                           for name, s in seconds.items()},
        "speedup_vs_baseline": {name: {"median": round(statistics.median(r), 2),
                                       "range": [round(min(r), 2), round(max(r), 2)]}
                                for name, r in ratios.items()},
        "test_quality": quality, "test_f1_delta_points": round(delta, 2),
        "test_answers_changed": changed, "test_questions": len(answers["fp32"]),
    }
    print(f"{len(rows)} requests ({windows} baseline windows), {args.rounds} rounds, "
          f"{torch.get_num_threads()} torch threads, {describe(report['cpu'])}, torch "
          f"{report['cpu']['torch']}, onnxruntime {report['cpu']['onnxruntime']}")
    print(f"tokens through the encoder: baseline {windows * WINDOW} positions; catalog "
          f"{tokens['real']} real, {tokens['padded']} padded in {tokens['batches']} batches "
          f"({windows * WINDOW / tokens['padded']:.2f}x fewer)")
    for name, r in report["requests_per_s"].items():
        ratio = report["speedup_vs_baseline"].get(name)
        extra = f"   {ratio['median']:.2f}x baseline ({ratio['range'][0]:.2f}-" \
                f"{ratio['range'][1]:.2f})" if ratio else ""
        print(f"  {name:20} {r['median']:7.2f} req/s{extra}")
    print("test split, each backend against fp32: " + ", ".join(
        f"{name[8:]} F1 {q['f1']:.2f} ({q['f1_delta_points']:+.2f}, {q['answers_changed']} changed)"
        for name, q in quality.items()))
    print(f"auto = {report['auto_backend']}: "
          f"{report['speedup_vs_baseline']['catalog-auto']['median']:.2f}x the baseline; test F1 "
          f"{quality['catalog-auto']['f1']:.2f} vs fp32 {quality['catalog-fp32']['f1']:.2f} "
          f"({delta:+.2f} points; {changed} of {len(answers['fp32'])} answers changed)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
