"""Model pages: one catalog card per model from one template family, and the index of all models.

A page joins three sources and invents nothing: the model asset (``model.yaml`` and its
``facts.yaml``, see :mod:`model_assets`), the family's shared facts and sample table
(``family.yaml``), and the ``metrics.json`` files given (the evaluation components' output, see
:mod:`metrics_file`). The evaluation table has one row per metric of each file, and a task the
model is evaluated on with no file says "not evaluated yet". The sample request and response are
the ``sample.json`` an evaluation wrote by scoring the task's example request through the
endpoint's own parser and predictor. Links are relative to the page, to this repository's
notebooks and CLI scripts; templates use ``StrictUndefined``.

    distilbert-catalog card --model distilbert-base-uncased --metrics out/eval/metrics.json
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import jinja2

from .metrics_file import read_metrics
from .model_assets import MODELS, cards_root, family, load_asset

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CLI_DIR = REPO_ROOT / "cli"
#: digits a metric keeps on a page (tests compare the table with the metrics file at this rounding)
DIGITS = 4


def _env(root: Path) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: f"{float(v):.{DIGITS}f}"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    return env


def _link(target: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def _sample_rows(rows: list[dict], tasks: Iterable[str], page_dir: Path) -> list[dict]:
    """The family's sample rows for ``tasks``, with links relative to the page."""
    tasks = list(tasks)
    out = []
    for row in rows:
        if row["task"] in tasks:
            out.append({**row,
                        "notebook_link": _link(NOTEBOOKS_DIR / row["notebook"], page_dir),
                        "cli_link": _link(CLI_DIR / row["cli"], page_dir),
                        "local_link": _link(CLI_DIR / "local" / row["cli"], page_dir)})
    return out


def _evaluated_model(record: dict) -> str:
    info = record.get("config", {}).get("model_info") or {}
    if info.get("weights_source"):
        return info["weights_source"]
    return Path(str(record["model"])).name


def _flat_metrics(record: dict) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in record["metrics"].items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]


def evaluation_rows(metrics_paths: Iterable[str | Path], page_dir: Path,
                    hub_id: str) -> tuple[list[dict], list[dict], dict | None]:
    """Evaluation table rows, the plots (copied next to the page) and the first sample."""
    rows, plots, sample = [], [], None
    for i, path in enumerate(metrics_paths):
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        record = read_metrics(path)
        evaluated = _evaluated_model(record)
        base = {"task": record["task"], "dataset": Path(str(record["dataset"])).name,
                "split": record["split"], "n_examples": record["n_examples"],
                "evaluated": evaluated, "stand_in": evaluated != hub_id}
        rows += [{**base, "metric": name, "value": value} for name, value in _flat_metrics(record)]
        for name, rel in record.get("artifacts", {}).items():
            if rel.endswith(".png"):
                target = f"{i + 1}-{record['task']}-{Path(rel).name}"
                shutil.copy2(folder / rel, page_dir / target)
                plots.append({"task": record["task"], "name": name.replace("_", " "),
                              "file": target})
        if sample is None and "sample" in record.get("artifacts", {}):
            sample = {"task": record["task"],
                      **json.loads((folder / record["artifacts"]["sample"]).read_text())}
    return rows, plots, sample


def render_model_page(model: str, metrics: Iterable[str | Path] = (),
                      output_dir: str | Path | None = None, root: Path | None = None) -> Path:
    """Write ``README.md`` (and the plots it shows) for ``model`` into ``output_dir``
    (default: the model's own folder under ``model_cards/``)."""
    root = root or cards_root()
    asset = load_asset(model, root)
    page_dir = Path(output_dir or asset.folder).resolve()
    page_dir.mkdir(parents=True, exist_ok=True)
    shared = family(root)
    hub_id = asset.tags["huggingface_model_id"].split("/")[-1]
    rows, plots, sample = evaluation_rows(metrics, page_dir, hub_id)
    evaluated_tasks = {row["task"] for row in rows}
    samples = shared["samples"]
    context = {
        "name": model, "asset": {"tags": asset.tags, "properties": asset.properties,
                                 "description": asset.model.description},
        "facts": asset.facts, "family": shared,
        "sources": {**shared["sources"], **asset.facts["sources"]},
        "skus": {stage: {"minimum": asset.properties[f"{stage}-min-sku-spec"],
                         "recommended": asset.recommended(stage)}
                 for stage in ("inference", "evaluation", "finetune")},
        "inference_samples": _sample_rows(samples["inference"], asset.tasks("inference"),
                                          page_dir),
        "finetuning_samples": _sample_rows(samples["finetuning"], asset.tasks("finetuning"),
                                           page_dir),
        "evaluation_samples": _sample_rows(samples["evaluation"], asset.tasks("evaluation"),
                                           page_dir),
        "evaluation": rows,
        "not_evaluated": [t for t in asset.tasks("evaluation") if t not in evaluated_tasks],
        "plots": plots, "sample": sample,
        "index_link": _link(root / "README.md", page_dir),
        "asset_link": _link(asset.folder / "model.yaml", page_dir),
    }
    text = _env(root).get_template("page.md.j2").render(**context)
    (page_dir / "README.md").write_text(text)
    return page_dir / "README.md"


def render_index(output_dir: str | Path | None = None, root: Path | None = None,
                 pages: dict[str, Path] | None = None) -> Path:
    """Write the index of every catalog model (``model_cards/README.md`` by default).

    ``pages`` maps a model to its rendered page when it is not in the model's own folder.
    """
    root = root or cards_root()
    out_dir = Path(output_dir or root).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    models = []
    for name in MODELS:
        asset = load_asset(name, root)
        page = (pages or {}).get(name, asset.folder / "README.md")
        models.append({"name": name, "task": asset.tags["task"],
                       "finetuning": asset.tasks("finetuning"),
                       "languages": asset.tags["languages"], "license": asset.tags["license"],
                       "parameters": asset.facts["parameters"],
                       "page_link": _link(page, out_dir),
                       "asset_link": _link(asset.folder / "model.yaml", out_dir)})
    text = _env(root).get_template("index.md.j2").render(models=models, family=family(root))
    (out_dir / "README.md").write_text(text)
    return out_dir / "README.md"
