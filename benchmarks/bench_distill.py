"""Distillation on the bundled emotion data: does the teacher help, and what does the student keep?

From one teacher (the quickstart's fine-tuned 6-layer emotion model, or ``--teacher``), in one run:

* ``kd``: the 3-layer student distilled on the 480 labelled rows (soft targets at T plus
  cross-entropy, the component's defaults);
* ``kd+transfer``: the same, plus a transfer set of unlabelled sentences the teacher labels (the
  bundled sentence-pair sentences: everyday statements never labelled with an emotion);
* ``kd+augmented``: the same, the transfer set made from the labelled rows themselves, as
  TinyBERT augments its task data: ``--augment-copies`` variants of each training sentence, each
  one-token word replaced with probability ``--augment-share`` by one of the masked-LM's top
  candidates for it (the pretrained offline DistilBERT's, ``--augment-model``), unlabelled;
* ``ce``: the same student (same initialisation: the teacher's layers; same recipe: epochs,
  learning rate, batches, seeds) trained with cross-entropy only (alpha_ce 0, alpha_task 1). A
  transfer set carries no labels, so it cannot help cross-entropy alone.

Each over ``--seeds`` seeds (mean ± sample standard deviation, and min-max), scored on the test
split and on the hand-written natural sentences; then requests/s of the teacher and of one
distilled student end to end through the Predictor (one-row requests, as an online endpoint gets
them), interleaved rounds, ratio per round. The CPU is recorded with the figures.

    nice -n 10 python benchmarks/bench_distill.py --teacher quickstart-out/pipeline/finetune/pytorch_model_folder
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (interleaved, print_summary, spread, transfer_set,  # noqa: E402
                          write_result)

LABELS = "sadness,joy,love,anger,fear,surprise"
CONFIGS = {"kd": {}, "ce": {"alpha_ce": 0.0, "alpha_task": 1.0},
           "kd+transfer": {"transfer": "sentences"}, "kd+augmented": {"transfer": "augmented"}}


def transfer_folder(out: Path, limit: int) -> Path:
    """Unlabelled sentences for the transfer set: the first ``limit`` distinct sentences of the
    bundled NLI pairs (both sentences of each pair)."""
    from distilbert_catalog.samples import sample_dir

    seen, rows = set(), []
    for line in (sample_dir() / "nli_pairs" / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        for text in (row["sentence1"], row["sentence2"]):
            if text not in seen:
                seen.add(text)
                rows.append({"text": text})
    return transfer_set(out / "transfer", rows[:limit])


def augmented_folder(out: Path, texts: list[str], model_dir: str | Path, copies: int,
                     share: float, seed: int, top_k: int = 8) -> Path:
    """TinyBERT-style augmentation: ``copies`` variants of each text, each one-token word
    replaced with probability ``share`` by one of the masked-LM's ``top_k`` candidates for it
    (the word masked alone in its sentence; other words, pieces and specials are never offered)."""
    import random

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    split = [text.split() for text in texts]
    queries = [(t, w) for t, words in enumerate(split) for w, word in enumerate(words)
               if word.isalpha() and len(tokenizer.tokenize(word)) == 1]
    candidates: dict[tuple[int, int], list[str]] = {}
    for begin in range(0, len(queries), 64):
        chunk = queries[begin:begin + 64]
        masked = [" ".join(split[t][:w] + [tokenizer.mask_token] + split[t][w + 1:])
                  for t, w in chunk]
        batch = tokenizer(masked, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits
        for row, column in (batch["input_ids"] == tokenizer.mask_token_id).nonzero().tolist():
            t, w = chunk[row]
            ranked = tokenizer.convert_ids_to_tokens(logits[row, column].topk(4 * top_k).indices)
            candidates[(t, w)] = [c for c in ranked if c.isalpha()
                                  and c != split[t][w].lower()][:top_k]
    rng, rows, seen = random.Random(seed), [], set(texts)
    for _ in range(copies):
        for t, words in enumerate(split):
            variant = " ".join(rng.choice(candidates[(t, w)])
                               if candidates.get((t, w)) and rng.random() < share else word
                               for w, word in enumerate(words))
            if variant not in seen:
                seen.add(variant)
                rows.append({"text": variant})
    return transfer_set(out / "augmented", rows)


def accuracy(model_dir, data_dir: Path) -> float:
    import distilbert_catalog as dc

    with tempfile.TemporaryDirectory() as tmp:
        record = dc.evaluate("text-classification", pytorch_model_path=str(model_dir),
                             test_data=str(data_dir), label_names=LABELS, backend="fp32",
                             output_dir=tmp)
    return record["metrics"]["accuracy"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="quickstart-out/pipeline/finetune/"
                                             "pytorch_model_folder")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--transfer-rows", type=int, default=240)
    parser.add_argument("--augment-copies", type=int, default=4)
    parser.add_argument("--augment-share", type=float, default=0.3)
    parser.add_argument("--augment-model", default=None,
                        help="masked-LM for kd+augmented (default: the pretrained offline "
                             "DistilBERT)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-steps", type=int, default=-1, help="(tests) stop each run early")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--rounds", type=int, default=5, help="speed rounds")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    import distilbert_catalog as dc
    from distilbert_catalog.samples import sample_dir

    emotion, natural = sample_dir() / "emotion", sample_dir() / "emotion_natural"
    work = Path(tempfile.mkdtemp(prefix="bench-distill-"))
    configs = args.configs.split(",")
    transfers = {"sentences": transfer_folder(work, args.transfer_rows)}
    if "kd+augmented" in configs:
        from distilbert_catalog.pretrained import pretrained_distilbert

        texts = [json.loads(line)["text"]
                 for line in (emotion / "train.jsonl").read_text().splitlines()]
        transfers["augmented"] = augmented_folder(
            work, texts, args.augment_model or pretrained_distilbert(), args.augment_copies,
            args.augment_share, seed=0)
    started = time.monotonic()
    result: dict = {"teacher": {"test": accuracy(args.teacher, emotion),
                                "natural": accuracy(args.teacher, natural)},
                    "settings": vars(args), "configs": {}, "transfer_rows": {}}
    print(f"teacher: test {result['teacher']['test']:.3f}, natural "
          f"{result['teacher']['natural']:.3f}", flush=True)
    students = {}
    for name in configs:
        options = dict(CONFIGS[name])
        transfer = transfers.get(options.pop("transfer", None))
        if transfer:
            result["transfer_rows"][name] = len(
                (transfer / "transfer.jsonl").read_text().splitlines())
        runs = {"test": [], "natural": [], "seconds": []}
        for seed in range(args.seeds):
            out = work / f"{name}-{seed}"
            t0 = time.monotonic()
            distilled = dc.distill(
                "text-classification", output_dir=out, teacher_model_path=args.teacher,
                train_data=str(emotion), test_data=str(natural), label_names=LABELS,
                transfer_data=str(transfer) if transfer else None,
                student_num_layers=args.layers, num_train_epochs=args.epochs,
                learning_rate=args.learning_rate, max_steps=args.max_steps, seed=seed,
                precision="fp32", speed_rounds=1, **options)
            runs["seconds"].append(time.monotonic() - t0)
            runs["test"].append(accuracy(distilled.model_dir, emotion))
            runs["natural"].append(distilled.report["student"]["metric"])
            students.setdefault(name, distilled.model_dir)
            print(f"{name} seed {seed}: test {runs['test'][-1]:.3f}, natural "
                  f"{runs['natural'][-1]:.3f} ({runs['seconds'][-1]:.0f}s)", flush=True)
        result["configs"][name] = {k: spread(v) for k, v in runs.items()}
        result["layers_from_teacher"] = distilled.report["student"]["layers_from_teacher"]
        write_result(result, args.output, "distill-emotion")  # partial results kept

    # requests/s end to end: one-row requests through the Predictor, teacher vs one student
    rows = [{"input_string": json.loads(line)["text"]}
            for line in (emotion / "test.jsonl").read_text().splitlines()]
    predictors = {"teacher": dc.load_model(args.teacher, backend="fp32"),
                  "student": dc.load_model(next(iter(students.values())), backend="fp32")}

    def requests(predictor):
        def run() -> int:
            for row in rows:
                predictor.predict([row])
            return len(rows)
        return run

    speed = interleaved({n: requests(p) for n, p in predictors.items()}, "teacher", args.rounds)
    print_summary(speed, "teacher", "requests")
    result["speed"] = speed
    result["seconds"] = time.monotonic() - started

    teacher = result["teacher"]
    print(f"\n{'':14} {'test':>16} {'natural':>16}   (mean ± sd over {args.seeds} seeds)")
    print(f"{'teacher':14} {teacher['test']:16.3f} {teacher['natural']:16.3f}")
    for name, r in result["configs"].items():
        cells = [f"{r[s]['mean']:.3f} ± {r[s]['stdev']:.3f}" for s in ("test", "natural")]
        kept = [r[s]["mean"] / teacher[s] for s in ("test", "natural")]
        print(f"{name:14} {cells[0]:>16} {cells[1]:>16}   kept {kept[0]:.1%} / {kept[1]:.1%}")
    print(f"student requests/s: {speed['student']['ratio_median']:.2f}x the teacher's "
          f"(per round {speed['student']['ratio_min']:.2f}-{speed['student']['ratio_max']:.2f})")
    write_result(result, args.output, "distill-emotion")
    return 0


if __name__ == "__main__":
    sys.exit(main())
