"""Fill-mask: the mask-only forward against full-vocabulary logits, in one run.

DistilBERT-base-sized masked-LM (6 layers, 768 hidden, 12 heads, random weights, the tiny
tokenizer's texts but a 30,522-token output vocabulary like distilbert-base-uncased); texts of
mixed length (5-60 words) with a [MASK] each (sample words may add more). Two forwards behind the same ``Predictor.run``
(length-sorted batches of 32):

- ``full-logits``: the whole model, batch x length x vocabulary logits, gathered at the masks
- ``catalog``:     ``FillMask.forward_fn`` - encoder, then the head on the mask positions only

Answers must be identical; reported as a time ratio and as logits bytes per batch.
Usage: python benchmarks/bench_fill_mask.py [--n 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch
from transformers import AutoTokenizer, DistilBertConfig, DistilBertForMaskedLM

from distilbert_catalog.backends import torch_forward
from distilbert_catalog.inference import Predictor
from distilbert_catalog.tasks import get_task
from distilbert_catalog.tasks.fill_mask import engine
from distilbert_catalog.tiny import build_tiny_model, sample_texts

VOCAB = 30522


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    words = " ".join(sample_texts()).split()
    texts = []
    for _ in range(args.n):
        text = rng.choices(words, k=rng.choice([5, 10, 20, 40, 60]))
        text.insert(rng.randrange(len(text)), "[MASK]")
        texts.append(" ".join(text))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp))
    torch.manual_seed(0)
    model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=VOCAB))
    predictor = Predictor(model, tokenizer, get_task("fill-mask"), backend="fp32",
                          batch_size=32, device="cpu")
    full, mask_id = torch_forward(predictor.model), tokenizer.mask_token_id

    def gathered(batch):
        where = batch["input_ids"] == mask_id
        return engine.MaskLogits(full(batch).logits[where], where.sum(dim=1).tolist())

    rows = [{"input_string": t} for t in texts]
    results = {}
    for name, forward in (("catalog", predictor.forward_fn), ("full-logits", gathered)) * 2:
        predictor.forward_fn = forward
        start = time.perf_counter()
        answers = predictor.predict(rows, {"top_k": 5})
        results[name] = (time.perf_counter() - start, answers)  # second round kept (warm)
    tokens = max(len(tokenizer(t)["input_ids"]) for t in texts)
    same = results["catalog"][1] == results["full-logits"][1]
    print(f"{args.n} texts, {args.threads} thread(s): catalog {results['catalog'][0]:.2f}s, "
          f"full-logits {results['full-logits'][0]:.2f}s, speed-up "
          f"{results['full-logits'][0] / results['catalog'][0]:.2f}x, same top-5: {same}")
    print(f"logits per batch of 32: catalog {32 * VOCAB * 4 / 1e6:.1f} MB (one mask per text), "
          f"full-logits up to {32 * tokens * VOCAB * 4 / 1e6:.0f} MB ({tokens} tokens)")


if __name__ == "__main__":
    main()
