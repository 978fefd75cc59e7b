"""Inference throughput: the catalog Predictor against naive baselines, in one run.

DistilBERT-base-sized (6 layers, 768 hidden, 12 heads), random weights, sequence-classification
head; texts of mixed length (5-120 words). Three ways to score the same texts:

- ``one-by-one``: one forward pass per text (what the removed transformers pipelines did by default)
- ``fixed-pad``: batches of 32 in arrival order, every batch padded to max_length 128
- ``catalog``:   Predictor.run — length-sorted batches of 32, each padded to its own longest text

Reported as texts/second and as ratios against the baselines measured here, never as absolutes
to compare across machines. Usage: python benchmarks/bench_inference.py [--n 256] [--threads N] [--lengths short]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import numpy as np
import torch
from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

from distilbert_catalog.backends import to_numpy
from distilbert_catalog.inference import Predictor
from distilbert_catalog.tasks import get_task
from distilbert_catalog.tiny import build_tiny_model, sample_texts


LENGTHS = {"mixed": [5, 8, 12, 20, 30, 60, 120], "short": [5, 8, 12, 16, 20, 30]}


def make_texts(n: int, lengths: list[int], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = " ".join(sample_texts()).split()
    return [" ".join(rng.choices(words, k=rng.choice(lengths))) for _ in range(n)]


def timed(fn) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--lengths", choices=sorted(LENGTHS), default="mixed",
                        help="words per text: mixed 5-120, or short (tweets) 5-30")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp))
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(num_labels=6)).eval()
    predictor = Predictor(model, tokenizer, get_task("text-classification"), backend="fp32",
                          batch_size=args.batch_size)
    texts = make_texts(args.n, LENGTHS[args.lengths])
    encode = dict(truncation=True, max_length=128)

    def one_by_one():
        with torch.inference_mode():
            return np.stack([to_numpy(model(**tokenizer(t, return_tensors="pt", **encode))
                                      .logits[0]) for t in texts])

    def fixed_pad():
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), args.batch_size):
                batch = tokenizer(texts[i:i + args.batch_size], padding="max_length",
                                  return_tensors="pt", **encode)
                out.append(to_numpy(model(**batch).logits))
        return np.concatenate(out)

    def catalog():
        features = [{k: v[i] for k, v in tokenizer(texts, **encode).items()}
                    for i in range(len(texts))]
        return np.stack(predictor.run(features, lambda o, b, l: list(to_numpy(o.logits))))

    catalog()  # warm-up (allocator, thread pool)
    results = {name: timed(fn) for name, fn in
               (("one-by-one", one_by_one), ("fixed-pad", fixed_pad), ("catalog", catalog))}
    reference = results["one-by-one"][1]
    print(f"{args.n} {args.lengths} texts, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"backend {predictor.backend}")
    for name, (seconds, logits) in results.items():
        diff = float(np.abs(logits - reference).max())
        print(f"  {name:11} {args.n / seconds:8.1f} texts/s   max |logit diff| {diff:.1e}")
    ours = results["catalog"][0]
    for name in ("one-by-one", "fixed-pad"):
        print(f"  catalog speed-up vs {name}: {results[name][0] / ours:.2f}x")


if __name__ == "__main__":
    main()
