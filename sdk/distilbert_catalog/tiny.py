"""Build a tiny DistilBERT checkpoint for offline tests and the quickstart.

The checkpoint is an ordinary Hugging Face model folder, shaped like ``distilbert-base-uncased``
(a ``DistilBertForMaskedLM`` with an uncased WordPiece vocabulary), only small and randomly
initialised, with the vocabulary trained on the project's bundled sample text. Every code path that
loads it is the one that loads the real hub model.

:func:`tiny_distilbert` is the default one, built on first use and cached (a notebook or sample
asking for it again starts without importing PyTorch); :func:`build_tiny_model` writes one to a
folder of your choice.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Iterable

from .defaults import cache_root, cached_folder
from .samples import sample_dir

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def sample_texts() -> list[str]:
    """Every string in the bundled sample data: the corpus the tiny vocabulary is trained on."""
    texts: list[str] = []
    for path in sorted(sample_dir().rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            texts.extend(_strings(row))
    return texts


def _strings(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def train_vocab(texts: Iterable[str], vocab_size: int, cased: bool = False) -> list[str]:
    """Train a WordPiece vocabulary the way BERT's was made, on ``texts`` (uncased unless
    ``cased``: then neither lower-cased nor accent-stripped, like multilingual BERT's)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=not cased,
                                                      strip_accents=False if cased else None)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def build_tiny_model(out_dir: str | Path, *, texts: Iterable[str] | None = None,
                     vocab_size: int = 3000, dim: int = 64, n_layers: int = 2, n_heads: int = 2,
                     hidden_dim: int = 256, max_position_embeddings: int = 512,
                     seed: int = 0, cased: bool = False) -> Path:
    """Write a tiny DistilBERT (masked-LM head, like the hub base model) and tokenizer to ``out_dir``.

    ``cased``: a cased tokenizer that keeps accents (like distilbert-base-multilingual-cased).
    """
    from transformers import DistilBertConfig, DistilBertForMaskedLM, DistilBertTokenizer, set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = train_vocab(sample_texts() if texts is None else texts, vocab_size, cased)
    tokenizer = DistilBertTokenizer(vocab={token: i for i, token in enumerate(vocab)},
                                    do_lower_case=not cased,
                                    strip_accents=False if cased else None,
                                    model_max_length=max_position_embeddings)
    tokenizer.save_pretrained(out_dir)
    set_seed(seed)
    config = DistilBertConfig(vocab_size=len(vocab), dim=dim, n_layers=n_layers, n_heads=n_heads,
                              hidden_dim=hidden_dim,
                              max_position_embeddings=max_position_embeddings,
                              pad_token_id=vocab.index("[PAD]"))
    DistilBertForMaskedLM(config).save_pretrained(out_dir)
    return out_dir


def tiny_cache_key() -> str:
    """Changes when the build, the sample text its vocabulary is trained on, or the libraries
    that initialise and write the weights change."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(sample_dir().rglob("*.jsonl")):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update("|".join(version(p) for p in ("torch", "transformers", "tokenizers")).encode())
    return digest.hexdigest()[:12]


def tiny_distilbert(cache_dir: str | Path | None = None) -> Path:
    """The default tiny DistilBERT (:func:`build_tiny_model`'s defaults), built on first use and
    kept in the catalog's cache folder."""
    root = Path(cache_dir) if cache_dir else cache_root()
    return cached_folder(root / f"tiny-distilbert-{tiny_cache_key()}", build_tiny_model)


def with_task_head(base: str | Path, task: str, out_dir: str | Path, seed: int = 0) -> Path:
    """``base`` (a tiny masked-LM folder) with ``task``'s head, seeded, saved to ``out_dir``.

    The head's labels are the task's :attr:`~distilbert_catalog.tasks.base.Task.example_labels`
    (mechanics only, never quality), and ``config.json`` records the task. A task whose head is
    the base model's own (fill-mask: the masked-LM head) gets ``base`` itself.
    """
    from transformers import AutoConfig, AutoTokenizer, set_seed

    from .tasks import get_task, record_task

    spec = get_task(task)
    if any(a.endswith(spec.head) for a in AutoConfig.from_pretrained(base).architectures or []):
        return Path(base)
    labels = spec.example_labels
    kwargs = {"id2label": dict(enumerate(labels)),
              "label2id": {n: i for i, n in enumerate(labels)}} if labels else {}
    set_seed(seed)
    model = spec.model_class().from_pretrained(base, **kwargs)
    record_task(model.config, spec)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(out_dir)
    return Path(out_dir)
