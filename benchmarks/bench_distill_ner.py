"""NER distillation on the bundled CoNLL-2003 sample: which recipe keeps the teacher's entity F1?

From one teacher (``--teacher``, or the pretrained offline DistilBERT fine-tuned here by the NER
pipeline's own recipe, read from ``pipelines/named-entity-recognition.yaml``), a student of
``--layers`` layers per configuration, over ``--seeds`` seeds, with the same recipe:

* ``kd``: soft targets on each word's first sub-token plus the task loss (0.5 / 0.5 at T = 2),
  on the 1,848 labelled sentences;
* ``kd+transfer``: the same plus a transfer set the teacher labels: the distinct sentences of the
  bundled SQuAD sample's contexts, as word tokens (full of names; how many of them contain a
  test-split entity is checked and printed);
* ``kd+transfer+cos``: the same plus the cosine between the teacher's and the student's last
  hidden states on every token (``alpha_cos`` 1, DistilBERT's third loss);
* ``kd+transfer+T1``: temperature 1 instead of 2; ``kd+transfer+layers024``: the student starts
  from teacher layers 0, 2, 4 instead of 1, 3, 5;
* ``kd+swapped``: the transfer set plus one copy of every training sentence with each person,
  organisation and place replaced by one of the SQuAD sample generator's names of that kind
  (entity-swap augmentation: the training sentences' contexts around names the teacher labels,
  never seen with gold labels), unlabelled like the rest.

Each student is scored by entity F1 on the test split (120 sentences, entities training never
saw) against the teacher's, mean ± sample standard deviation and min-max over the seeds; speed is
the distill component's own measurement (teacher and student evaluated in interleaved rounds on
this CPU, fp32). Training runs at the recipe's ``precision: auto`` (what it chose is recorded per
run: bf16 where a bf16 step measured faster here). The CPU is recorded with the figures.

    nice -n 10 python benchmarks/bench_distill_ner.py --configs kd+transfer,kd+transfer+cos
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import spread, transfer_set, write_result  # noqa: E402

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "named-entity-recognition.yaml"
#: the pipeline inputs that are the fine-tuning recipe, shared by the teacher and every student
RECIPE_KEYS = ("num_train_epochs", "learning_rate", "per_device_train_batch_size",
               "warmup_ratio", "max_seq_length", "stride")
TRANSFER = {"transfer": "sentences"}
CONFIGS = {"kd": {}, "kd+transfer": TRANSFER, "kd+swapped": {"transfer": "swapped"},
           "kd+transfer+cos": {**TRANSFER, "alpha_cos": 1.0},
           "kd+transfer+T1": {**TRANSFER, "temperature": 1.0},
           "kd+transfer+layers024": {**TRANSFER, "student_layers": "0,2,4"}}
WORD = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def pipeline_recipe() -> tuple[dict, str]:
    inputs = yaml.safe_load(PIPELINE.read_text())["inputs"]
    return {key: inputs[key] for key in RECIPE_KEYS}, inputs["label_names"]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def entities(rows: list[dict], labels: list[str]) -> set[str]:
    """Every entity of ``rows`` (CoNLL tags as ids) as its words joined by spaces (the spans
    seqeval's scorer reads)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return {" ".join(row["tokens"][start:end + 1]) for row in rows
            for _, start, end in get_entities([labels[tag] for tag in row["ner_tags"]])}


def context_sentences(limit: int | None) -> list[dict]:
    """The SQuAD sample's distinct context sentences as word tokens."""
    from distilbert_catalog.samples import sample_dir

    seen, rows = set(), []
    for row in read_rows(sample_dir() / "squad_v2" / "train.jsonl"):
        for sentence in re.split(r"(?<=[.!?])\s+", row["context"]):
            if sentence and sentence not in seen:
                seen.add(sentence)
                rows.append({"tokens": WORD.findall(sentence)})
    return rows[:limit]


def swapped_sentences(rows: list[dict], labels: list[str], seed: int) -> list[dict]:
    """Each of ``rows`` once more, every PER, ORG and LOC entity replaced by a generated name of
    that kind (the SQuAD sample generator's people, companies and cities); tags dropped."""
    import random

    from distilbert_catalog.samples.generate import CITY_A, CITY_B, CO_A, CO_B, FIRST, LAST

    names = {"PER": [f"{a} {b}" for a in FIRST for b in LAST],
             "ORG": [f"{a} {b}" for a in CO_A for b in CO_B],
             "LOC": [a + b for a in CITY_A for b in CITY_B]}
    rng, out = random.Random(seed), []
    for row in rows:
        tokens = []
        for token, tag in zip(row["tokens"], row["ner_tags"]):
            kind = labels[tag][2:]
            if kind not in names:
                tokens.append(token)
            elif labels[tag].startswith("B-"):
                tokens.extend(rng.choice(names[kind]).split())
        out.append({"tokens": tokens})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=None,
                        help="a fine-tuned NER model (default: fine-tune --base-model here)")
    parser.add_argument("--base-model", default=None,
                        help="the teacher's starting model (default: the pretrained offline "
                             "DistilBERT)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--transfer-rows", type=int, default=None, help="(default: all)")
    parser.add_argument("--max-steps", type=int, default=-1, help="(tests) stop each run early")
    parser.add_argument("--configs", default="kd+transfer,kd+transfer+cos")
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    import distilbert_catalog as dc
    from distilbert_catalog.samples import sample_dir

    conll = sample_dir() / "conll2003"
    recipe, label_names = pipeline_recipe()
    recipe["max_steps"] = args.max_steps
    work = Path(tempfile.mkdtemp(prefix="bench-distill-ner-"))
    started = time.monotonic()
    teacher = args.teacher
    if teacher is None:
        from distilbert_catalog.pretrained import pretrained_distilbert

        teacher = str(dc.finetune("token-classification", output_dir=work / "teacher",
                                  model_name=str(args.base_model or pretrained_distilbert()),
                                  train_data=str(conll), label_names=label_names, seed=42,
                                  **recipe).model_dir)
    labels = label_names.split(",")
    configs = args.configs.split(",")
    wanted = {CONFIGS[name].get("transfer") for name in configs} - {None}
    test_entities = entities(read_rows(conll / "test.jsonl"), labels)
    result: dict = {"settings": {**vars(args), "recipe": recipe}, "teacher_model": teacher,
                    "transfer_rows": {}, "transfer_rows_with_test_entities": {}, "configs": {}}
    transfers = {}
    for name in sorted(wanted):
        rows = context_sentences(args.transfer_rows)
        if name == "swapped":
            rows += swapped_sentences(read_rows(conll / "train.jsonl")[:args.transfer_rows],
                                      labels, seed=0)
        overlap = sum(any(f" {e} " in f" {' '.join(row['tokens'])} " for e in test_entities)
                      for row in rows)
        result["transfer_rows"][name] = len(rows)
        result["transfer_rows_with_test_entities"][name] = overlap
        print(f"transfer set {name}: {len(rows)} sentences, {overlap} with a test-split entity "
              f"(of {len(test_entities)})", flush=True)
        transfers[name] = transfer_set(work / name, rows)
    for name in configs:
        options = dict(CONFIGS[name])
        transfer = transfers.get(options.pop("transfer", None))
        runs: dict[str, list] = {"f1": [], "kept": [], "speed_ratio": [], "latency_ratio": [],
                                 "seconds": [], "precision": []}
        for seed in range(args.seeds):
            t0 = time.monotonic()
            distilled = dc.distill(
                "token-classification", output_dir=work / f"{name}-{seed}",
                teacher_model_path=teacher, train_data=str(conll), test_data=str(conll),
                test_split="test", label_names=label_names,
                transfer_data=str(transfer) if transfer else None,
                student_num_layers=args.layers, seed=seed, speed_rounds=args.speed_rounds,
                **recipe, **options)
            report = distilled.report
            config = json.loads((distilled.metrics_dir / "metrics.json").read_text())["config"]
            runs["precision"].append(config["precision_resolved"])
            result["teacher_f1"] = report["teacher"]["metric"]
            result["layers_from_teacher"] = report["student"]["layers_from_teacher"]
            runs["f1"].append(report["student"]["metric"])
            for key in ("kept", "speed_ratio", "latency_ratio"):
                runs[key].append(report[key])
            runs["seconds"].append(time.monotonic() - t0)
            print(f"{name} seed {seed}: test entity F1 {runs['f1'][-1]:.3f} (teacher "
                  f"{result['teacher_f1']:.3f}, kept {runs['kept'][-1]:.1%}), "
                  f"{runs['speed_ratio'][-1]:.2f}x ({runs['seconds'][-1]:.0f}s)", flush=True)
        precision = runs.pop("precision")
        result["configs"][name] = {**{key: spread(values) for key, values in runs.items()},
                                   "precision": precision}
        write_result(result, args.output, "distill-ner")  # partial results kept
    result["seconds"] = time.monotonic() - started

    print(f"\nteacher test entity F1 {result['teacher_f1']:.3f}; {args.layers}-layer students, "
          f"mean ± sd over {args.seeds} seeds:")
    for name, r in result["configs"].items():
        print(f"  {name:22} F1 {r['f1']['mean']:.3f} ± {r['f1']['stdev']:.3f} "
              f"({r['f1']['min']:.3f}-{r['f1']['max']:.3f})   kept {r['kept']['mean']:.1%}   "
              f"{r['speed_ratio']['mean']:.2f}x the teacher's sentences/s")
    write_result(result, args.output, "distill-ner")
    return 0


if __name__ == "__main__":
    sys.exit(main())
