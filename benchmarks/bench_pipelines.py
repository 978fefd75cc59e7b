"""Text classification and NER: the catalog against the transformers pipelines, in one run.

The same texts through the same model folder, two ways:

- ``pipeline`` (the baseline): ``transformers.pipeline(task, model=folder, tokenizer=folder)``
  called the way the transformers docs show - one call with the list of texts, default batch
  size (one text per forward pass), and for NER ``aggregation_strategy="simple"``;
  ``--pipeline-batch-size N`` adds a second pipeline baseline with ``batch_size=N`` (batches
  in arrival order, padded to their longest text), for reference;
- ``catalog-<backend>``: ``load_predictor(folder, backend=...)`` once, then
  ``predictor.predict(rows, params)`` on ``{"input_string": text}`` rows - length-sorted
  batches of ``--batch-size``, each padded to its own longest text, the encoder on each
  ``--backends`` entry (fp32, onnx, int8, onnx-int8; default: all that run here). The catalog's
  NER default is ``aggregation_strategy="simple"``, the pipeline's grouping.

Both give the same kind of answer - the best label and its score per text; entity groups with
character offsets and mean scores per text - and the script checks that they agree (same label;
same ``(entity_group, start, end)`` list), since a speed ratio only means something between
equal answers. fp32 and onnx must agree with the pipeline (up to float ties); int8 and
onnx-int8 change the numbers, so with a random head (near-uniform scores) their labels drift:
their quality is the quality gate's business (``distilbert_catalog.quality_gate``), not this
benchmark's.

Texts: ``--n`` texts of mixed length, each 1-6 bundled sample sentences joined (emotion texts
for text classification, CoNLL sentences for NER). Model: ``--model`` (a Hugging Face or MLflow
model folder of the task), else the pretrained offline DistilBERT (384 wide) with a new, seeded
task head, or with ``--base-sized`` a DistilBERT-base-sized model (768 wide, random weights).

Rounds are interleaved (the order rotated each round, after one warm-up call of each method);
each method's texts/s is the median over rounds (min-max given), and each catalog backend's
speed-up is the median of its per-round ratios to the baseline's rate in the same round (min-max
given). Threads: ``--threads`` (default 1) for PyTorch and for ONNX Runtime alike. Model loading
is outside every figure. Results go to ``benchmarks/results/``, named
``pipelines-<task>.json``, ``pipelines-<task>-base-sized.json`` or
``pipelines-<task>-given-model.json``.

Usage: python benchmarks/bench_pipelines.py --task token-classification [--n 128] [--rounds 5]
       [--base-sized] [--backends fp32,onnx] [--pipeline-batch-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


from bench_common import (add_run_args, base_sized_model, interleaved, mixed_texts,
                          parse_run_args, print_summary, write_result)

TASKS = ("text-classification", "token-classification")


def pipeline_answers(task: str, answers: list) -> list:
    """The pipeline's answers in the catalog's shape (a dict per text for text classification)."""
    if task == "text-classification":
        return [a[0] if isinstance(a, list) else a for a in answers]
    return answers


def agreement(task: str, ours: list, theirs: list) -> dict:
    """How far the catalog's answers agree with the pipeline's, text by text."""
    if task == "text-classification":
        same = [a["label"] == b["label"] for a, b in zip(ours, theirs)]
        diffs = [abs(a["score"] - float(b["score"])) for a, b, s in zip(ours, theirs, same) if s]
    else:
        def spans(entities):
            return [(e["entity_group"], e["start"], e["end"]) for e in entities]

        same = [spans(a) == spans(b) for a, b in zip(ours, theirs)]
        diffs = [abs(x["score"] - float(y["score"])) for a, b, s in zip(ours, theirs, same) if s
                 for x, y in zip(a, b)]
    return {"texts_identical": sum(same), "texts": len(same),
            "share_identical": sum(same) / len(same),
            "max_score_difference": float(max(diffs, default=0.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, default="text-classification")
    parser.add_argument("--model", help="Hugging Face or MLflow model folder of --task")
    parser.add_argument("--base-sized", action="store_true",
                        help="a DistilBERT-base-sized model with random weights instead of the "
                             "pretrained offline DistilBERT")
    parser.add_argument("--n", type=int, default=128, help="texts per method and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="fp32,onnx,int8,onnx-int8")
    parser.add_argument("--batch-size", type=int, default=32, help="the catalog's batch size")
    parser.add_argument("--pipeline-batch-size", type=int,
                        help="also time the pipeline with this batch_size")
    add_run_args(parser)
    args = parse_run_args(parser)

    from transformers import pipeline

    from distilbert_catalog.backends import unavailable
    from distilbert_catalog.inference import load_predictor
    from distilbert_catalog.modeling import resolve_model_source

    backends = [b for b in args.backends.split(",") if b]
    skipped = {b: unavailable(b) for b in backends if unavailable(b)}
    for name, reason in skipped.items():
        print(f"skipping backend {name}: {reason}")
    backends = [b for b in backends if b not in skipped]
    texts = mixed_texts(args.task, args.n)
    rows = [{"input_string": t} for t in texts]
    ner = args.task == "token-classification"
    params = {"aggregation_strategy": "simple"} if ner else {}

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            folder, described = Path(resolve_model_source(args.model)[0]), args.model
        elif args.base_sized:
            folder = base_sized_model(args.task, Path(tmp, "model"))
            described = "DistilBERT-base-sized (768 wide, 6 layers), random weights"
        else:
            from distilbert_catalog.pretrained import pretrained_distilbert
            from distilbert_catalog.tiny import with_task_head

            folder = with_task_head(pretrained_distilbert(), args.task, Path(tmp, "model"))
            described = "pretrained offline DistilBERT (384 wide, 6 layers), new seeded head"

        answer_fns = {}
        peer = pipeline(args.task, model=str(folder), tokenizer=str(folder), device="cpu",
                        **params)
        answer_fns["pipeline"] = lambda: pipeline_answers(args.task, peer(texts))
        if args.pipeline_batch_size:
            answer_fns[f"pipeline-bs{args.pipeline_batch_size}"] = lambda: pipeline_answers(
                args.task, peer(texts, batch_size=args.pipeline_batch_size))
        for backend in backends:
            predictor = load_predictor(folder, task_name=args.task, backend=backend,
                                       batch_size=args.batch_size)
            answer_fns[f"catalog-{backend}"] = (lambda p=predictor: p.predict(rows, params))

        answers = {name: fn() for name, fn in answer_fns.items()}  # also the warm-up call
        agree = {name: agreement(args.task, answers[name], answers["pipeline"])
                 for name in answer_fns if name != "pipeline"}
        summary = interleaved({name: (lambda fn=fn: len(fn())) for name, fn in answer_fns.items()},
                              "pipeline", args.rounds, warmup=False)

    words = [len(t.split()) for t in texts]
    print(f"{args.task}: {described}; {args.n} texts of {min(words)}-{max(words)} words "
          f"(mean {sum(words) / len(words):.0f}); {args.threads} thread(s), {args.rounds} rounds")
    print_summary(summary, "pipeline", "texts")
    what = "same label" if args.task == "text-classification" else "same entity groups"
    for name, a in agree.items():
        print(f"{name:>18} vs pipeline: {what} on {a['texts_identical']}/{a['texts']} texts "
              f"(largest score difference where identical: {a['max_score_difference']:.1e})")
    name = f"pipelines-{args.task}" + ("-given-model" if args.model else
                                        "-base-sized" if args.base_sized else "")
    write_result({"benchmark": "bench_pipelines", "task": args.task, "model": described,
                  "texts": args.n, "words_min": min(words), "words_max": max(words),
                  "words_mean": sum(words) / len(words), "catalog_batch_size": args.batch_size,
                  "pipeline_call": f"pipeline({args.task!r}, model=..., tokenizer=..."
                                   + (", aggregation_strategy='simple'" if ner else "")
                                   + ")(texts)",
                  "threads": args.threads, "rounds": args.rounds, "baseline": "pipeline",
                  "skipped_backends": skipped, "results": summary, "agreement": agree},
                 args.output, name)


if __name__ == "__main__":
    main()
