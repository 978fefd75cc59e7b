"""The catalog's model assets: ``model_cards/<model>/model.yaml`` (an Azure ML model YAML, read with
azure-ai-ml's ``load_model``), ``facts.yaml`` (published facts with sources) and the family-wide
``family.yaml`` and ``skus.yaml``.

The catalog metadata follows the Azure ML model catalog's keys: ``tags`` carry the task, license,
languages, datasets, hub id and the compute allow lists; ``properties`` carry the inference,
fine-tuning and evaluation tasks and, per stage, a minimum SKU spec ``vCPU|GPU|RAM GB|disk GB``
and the recommended SKUs. :func:`check_asset` lists every way one asset breaks that schema.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import CatalogError

#: the catalog's models, in the order the index lists them
MODELS = ("distilbert-base-uncased", "distilbert-base-cased",
          "distilbert-base-uncased-distilled-squad", "distilbert-base-cased-distilled-squad",
          "distilbert-base-multilingual-cased")
STAGES = ("inference", "evaluation", "finetune")
REQUIRED_TAGS = ("task", "license", "languages", "datasets", "huggingface_model_id")
REQUIRED_PROPERTIES = ("inference-tasks", "finetuning-tasks", "evaluation-tasks",
                       *(f"{s}-{k}" for s in STAGES for k in ("min-sku-spec", "recommended-sku")))
REQUIRED_FACTS = ("summary", "architecture", "parameters", "sources", "published", "limitations")
SKU_SPEC = re.compile(r"^(\d+)\|(\d+)\|(\d+)\|(\d+)$")
SKU_FIELDS = ("vCPU", "GPU", "RAM GB", "disk GB")


def cards_root() -> Path:
    """``$DISTILBERT_CARDS_DIR`` or the catalog's ``model_cards/`` (in the package)."""
    from .assets import asset_dir

    env = os.environ.get("DISTILBERT_CARDS_DIR")
    return Path(env) if env else asset_dir("model_cards")


def parse_sku_spec(spec: str) -> tuple[int, int, int, int]:
    """``"4|0|14|28"`` -> (vCPU, GPU, RAM GB, disk GB); anything else raises ``ValueError``."""
    match = SKU_SPEC.match(str(spec).strip())
    if not match:
        raise ValueError(f"SKU spec {spec!r} is not 'vCPU|GPU|RAM GB|disk GB' (e.g. '4|0|14|28')")
    return tuple(int(g) for g in match.groups())


def split_list(value: str) -> list[str]:
    """A catalog property list (``"a, b"``) as a Python list."""
    return [item.strip() for item in str(value).split(",") if item.strip()]


@dataclass
class ModelAsset:
    name: str
    folder: Path
    model: Any  # azure.ai.ml.entities.Model
    facts: dict[str, Any]

    @property
    def tags(self) -> dict[str, Any]:
        return self.model.tags

    @property
    def properties(self) -> dict[str, Any]:
        return self.model.properties

    def tasks(self, kind: str) -> list[str]:
        """``kind`` is inference, finetuning or evaluation."""
        return split_list(self.properties[f"{kind}-tasks"])

    def sku_spec(self, stage: str) -> tuple[int, int, int, int]:
        return parse_sku_spec(self.properties[f"{stage}-min-sku-spec"])

    def recommended(self, stage: str) -> list[str]:
        return split_list(self.properties[f"{stage}-recommended-sku"])

    def allowed(self, stage: str) -> list[str]:
        return list(self.tags[f"{stage}_compute_allow_list"])


def _read_yaml(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


@lru_cache(maxsize=None)
def _family(root: Path) -> dict:
    return _read_yaml(root / "family.yaml")


def family(root: Path | None = None) -> dict:
    """``family.yaml``: facts, samples and limitations every DistilBERT model shares."""
    return _family(root or cards_root())


def skus(root: Path | None = None) -> dict[str, tuple[int, int, int, int]]:
    """Published sizes of the Azure VM SKUs the assets name, as parsed SKU specs."""
    data = _read_yaml((root or cards_root()) / "skus.yaml")
    return {name: parse_sku_spec(entry["spec"]) for name, entry in data["skus"].items()}


def load_asset(name: str, root: Path | None = None) -> ModelAsset:
    """The model asset of ``name``: its model.yaml through azure-ai-ml, and its facts."""
    from azure.ai.ml import load_model

    folder = (root or cards_root()) / name
    if not (folder / "model.yaml").is_file():
        raise CatalogError(f"no model asset '{name}' (expected {folder / 'model.yaml'}); "
                           f"catalog models: {', '.join(MODELS)}")
    return ModelAsset(name, folder, load_model(source=folder / "model.yaml"),
                      _read_yaml(folder / "facts.yaml"))


def check_asset(asset: ModelAsset, sku_table: dict[str, tuple] | None = None) -> list[str]:
    """Every way ``asset`` breaks the catalog's metadata schema (empty when it is valid)."""
    problems = []
    where = f"{asset.name}/model.yaml"
    if asset.model.name != asset.name:
        problems.append(f"{where}: name is {asset.model.name!r}, the folder says {asset.name!r}")
    problems += [f"{where}: tags lack {k!r}" for k in REQUIRED_TAGS if not asset.tags.get(k)]
    problems += [f"{where}: properties lack {k!r}" for k in REQUIRED_PROPERTIES
                 if not asset.properties.get(k)]
    problems += [f"{asset.name}/facts.yaml: lacks {k!r}" for k in REQUIRED_FACTS
                 if k not in asset.facts]
    if problems:
        return problems
    if asset.tags["task"] not in asset.tasks("inference"):
        problems.append(f"{where}: task {asset.tags['task']!r} is not among its inference-tasks")
    for item in asset.facts["published"]:
        if item.get("source") not in {*asset.facts["sources"], *family()["sources"]}:
            problems.append(f"{asset.name}/facts.yaml: {item.get('fact')!r} has no known source")
    for stage in STAGES:
        try:
            minimum = asset.sku_spec(stage)
        except ValueError as exc:
            problems.append(f"{where}: {stage}-min-sku-spec: {exc}")
            continue
        allowed = asset.tags.get(f"{stage}_compute_allow_list")
        if not isinstance(allowed, list) or not allowed:
            problems.append(f"{where}: tags.{stage}_compute_allow_list must be a list of SKUs")
            continue
        recommended = asset.recommended(stage)
        for sku in sorted(set(recommended) - set(allowed)):
            problems.append(f"{where}: {stage} recommends {sku}, which its allow list lacks")
        for sku in allowed if sku_table is not None else []:
            if sku not in sku_table:
                problems.append(f"{where}: {stage} allows {sku}, unknown to skus.yaml")
            elif any(have < need for have, need in zip(sku_table[sku], minimum)):
                short = [f"{f} {h} < {n}" for f, h, n in zip(SKU_FIELDS, sku_table[sku], minimum)
                         if h < n]
                problems.append(f"{where}: {stage} allows {sku} below its minimum spec "
                                f"({', '.join(short)})")
    return problems
