"""What bench_pipelines.py, bench_server_memory.py and bench_finetune.py share.

* :func:`interleaved` - time several ways of doing the same work in rounds, the order rotated
  each round, and give each one's median rate and each one's per-round speed ratio against the
  baseline (the ratio is taken within a round, so load that changes between rounds cancels out);
* the texts (mixed-length sentences from the bundled samples) and the models (the pretrained
  offline DistilBERT with a task head, or a DistilBERT-base-sized model with random weights and
  the real 30,522-token uncased vocabulary) the benchmarks run on;
* :func:`spread` - mean, spread and range of per-seed figures; :func:`transfer_set` - a
  distillation transfer folder;
* :func:`write_result` - the JSON file, by default ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Callable, Mapping

import torch

RESULTS = Path(__file__).resolve().parent / "results"
#: how many bundled sentences one benchmark text joins: mostly one, a few long ones
JOIN = [1, 1, 1, 2, 2, 3, 4, 6]


def machine() -> dict:
    """Where the figures were measured: CPU model and ISA features, runtimes' versions, threads
    (:func:`distilbert_catalog.hardware.cpu_description`) and the load at the end of the run."""
    import os

    from distilbert_catalog.hardware import cpu_description

    return {"cpu": cpu_description(), "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg())}


def sample_sentences(task: str) -> list[str]:
    """Every sentence of the bundled sample that matches ``task``, as plain text."""
    from distilbert_catalog.samples import sample_dir

    if task == "token-classification":
        folder, read = sample_dir() / "conll2003", lambda row: " ".join(row["tokens"])
    else:
        folder, read = sample_dir() / "emotion", lambda row: row["text"]
    return [read(json.loads(line)) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def mixed_texts(task: str, n: int, seed: int = 0) -> list[str]:
    """``n`` texts of mixed length: 1-6 bundled sentences joined (emotion texts, or CoNLL
    sentences for NER), shuffled with ``seed``."""
    rng = random.Random(seed)
    sentences = sample_sentences(task)
    return [" ".join(rng.sample(sentences, rng.choice(JOIN))) for _ in range(n)]


def label_names(task: str) -> list[str]:
    from distilbert_catalog.samples import sample_dir

    folder = "conll2003" if task == "token-classification" else "emotion"
    return list(json.loads((sample_dir() / folder / "labels.json").read_text()))


def base_sized_model(task: str, out_dir: Path, seed: int = 0) -> Path:
    """A DistilBERT-base-sized model (6 layers, 768 wide, 12 heads, 30,522-token vocabulary:
    ``DistilBertConfig()``'s defaults, 66 M parameters in the encoder) with ``task``'s head for
    the sample's labels, random weights, and the pretrained offline DistilBERT's tokenizer (the
    real uncased WordPiece vocabulary), saved as a Hugging Face folder."""
    from transformers import AutoTokenizer, DistilBertConfig

    from distilbert_catalog.pretrained import pretrained_distilbert
    from distilbert_catalog.tasks import get_task

    tokenizer = AutoTokenizer.from_pretrained(pretrained_distilbert())
    labels = label_names(task)
    config = DistilBertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              id2label=dict(enumerate(labels)),
                              label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(seed)
    model = get_task(task).model_class().from_config(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def interleaved(methods: Mapping[str, Callable[[], int]], baseline: str, rounds: int,
                warmup: bool = True) -> dict:
    """Run every method once per round (the order rotated by one each round) and time it.

    Each method returns how many items it handled. Returns per method: items/s per round and
    their median, min and max, and - for every method but the baseline - the per-round ratio of
    its rate to the baseline's rate in the same round, with median, min and max.
    """
    names = list(methods)
    if warmup:  # first-call costs (allocations, ONNX session warm-up) out of the figures
        for name in names:
            methods[name]()
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            items = methods[name]()
            rates[name].append(items / (time.perf_counter() - start))
    summary = {}
    for name in names:
        v = rates[name]
        entry = {"per_s_median": statistics.median(v), "per_s_min": min(v),
                 "per_s_max": max(v), "per_s_rounds": v}
        if name != baseline:
            ratios = [a / b for a, b in zip(v, rates[baseline])]
            entry |= {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
                      "ratio_max": max(ratios), "ratio_rounds": ratios}
        summary[name] = entry
    return summary


def print_summary(summary: dict, baseline: str, unit: str) -> None:
    width = max(len(n) for n in summary)
    for name, s in summary.items():
        line = (f"{name:>{width}}: {s['per_s_median']:8.1f} {unit}/s "
                f"(min {s['per_s_min']:.1f}, max {s['per_s_max']:.1f})")
        if name == baseline:
            line += "  [baseline]"
        else:
            line += (f"  ratio {s['ratio_median']:.2f}x "
                     f"(per round {s['ratio_min']:.2f}-{s['ratio_max']:.2f})")
        print(line)


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value), min, max and the values themselves."""
    return {"mean": statistics.mean(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "runs": values}


def transfer_set(folder: Path, rows: list[dict]) -> Path:
    """``folder`` holding ``rows`` as ``transfer.jsonl``, the distill component's transfer_data."""
    from distilbert_catalog.samples.markup import write_jsonl

    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "transfer.jsonl", rows)
    return folder


def write_result(result: dict, output: str | Path | None, name: str) -> Path:
    path = Path(output) if output else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    from distilbert_catalog.hardware import describe

    where = machine()
    path.write_text(json.dumps({**result, "machine": where}, indent=2) + "\n")
    print(f"measured on {describe(where['cpu'])}, {where['torch_threads']} thread(s), torch "
          f"{where['cpu']['torch']}, ONNX Runtime {where['cpu']['onnxruntime']}\nresults: {path}")
    return path


def add_run_args(parser) -> None:
    """The options every benchmark here shares: threads and the results file."""
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="JSON results file (default: benchmarks/results/)")


def parse_run_args(parser):
    """Parse, set PyTorch's (and so ONNX Runtime's) thread count, and quiet library logging."""
    import logging
    import warnings

    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    return args
