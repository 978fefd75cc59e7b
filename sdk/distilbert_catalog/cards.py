"""Model cards: Jinja2 templates rendered from metrics.json, strictly.

A card template folder holds ``card.md.j2`` (plus any partials it includes) and ``metadata.yaml``
(what the catalog says about the model: summary, limitations, license). What differs by task
comes from the task's folder: its evaluation section (``tasks/<task>/card.md.j2``, included as
``evaluation/<task>.md.j2`` unless the template folder has its own) and its intended use. Rendering uses ``StrictUndefined``: a metric the template asks for and
the metrics file lacks is an error, never an empty cell.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from .assets import asset_dir
from .metrics_file import read_metrics
from .tasks import TASKS, get_task

DEFAULT_MODEL = "distilbert-base-uncased"


def default_template_dir(model: str = DEFAULT_MODEL) -> Path:
    """The catalog's card folder for ``model``: $DISTILBERT_CARDS_DIR or the catalog's
    model_cards/ (:func:`distilbert_catalog.assets.asset_dir`)."""
    roots = [Path(os.environ["DISTILBERT_CARDS_DIR"])] if os.environ.get("DISTILBERT_CARDS_DIR") \
        else []
    roots.append(asset_dir("model_cards"))
    for root in roots:
        if (root / model / "card.md.j2").exists():
            return root / model
    raise FileNotFoundError(f"no model card template for {model} under {[str(r) for r in roots]}"
                            "; pass card_template or set DISTILBERT_CARDS_DIR")


@dataclass
class CardData:
    """Everything a card template may use."""

    model_name: str
    metadata: dict[str, Any]
    evaluation: dict[str, Any]
    training: dict[str, Any] | None = None
    extra_evaluation: dict[str, Any] | None = None
    sample: dict[str, Any] | None = None
    images: dict[str, str] = field(default_factory=dict)
    intended_use: str = ""


def load_card_data(model_name: str, template_dir: Path, evaluation_dir: Path,
                   training_dir: Path | None = None,
                   extra_evaluation_dir: Path | None = None) -> CardData:
    evaluation = read_metrics(evaluation_dir)
    training = read_metrics(training_dir) if training_dir else None
    extra = read_metrics(extra_evaluation_dir) if extra_evaluation_dir else None
    sample_name = evaluation["artifacts"].get("sample")
    sample = None
    if sample_name:
        sample = json.loads((Path(evaluation_dir) / sample_name).read_text())
    images = {name: rel for name, rel in evaluation["artifacts"].items() if rel.endswith(".png")}
    with open(template_dir / "metadata.yaml") as f:
        metadata = yaml.safe_load(f)
    return CardData(model_name, metadata, evaluation, training, extra, sample, images,
                    intended_use=get_task(evaluation["task"]).intended_use)


def task_section(name: str) -> str | None:
    """``evaluation/<task>.md.j2``: the task folder's card section (for a template folder that
    has no section of its own for that task)."""
    folder, _, file = name.partition("/")
    if folder != "evaluation" or not file.endswith(".md.j2"):
        return None
    task = TASKS.get(file[:-len(".md.j2")])
    return task.card_section().read_text() if task else None


#: a relative path climbing more folders than this is an absolute path in disguise
MAX_UP = 3


def display_path(value, relative_to: Path | None) -> str:
    """A path as a card shows it, never as this machine's absolute path.

    Relative to the card's folder when that stays near it (a pipeline's sibling outputs, e.g.
    ``../../finetune/mlflow_model_folder``); otherwise only its last two parts
    (``…/samples/emotion``), since ``../../../../root/...`` would spell out the machine's layout.
    Hub ids and other non-paths pass through unchanged.
    """
    text = str(value)
    if not os.path.isabs(text):
        return text
    if relative_to and Path(os.path.commonpath([text, relative_to])) != Path(Path(text).anchor):
        rel = os.path.relpath(text, relative_to)
        if Path(rel).parts[:MAX_UP + 1].count("..") <= MAX_UP:
            return rel
    return os.path.join("…", *Path(text).parts[-2:])


def render_card(data: CardData, template_dir: Path, relative_to: Path | None = None) -> str:
    """Render ``card.md.j2``; paths are shown relative to ``relative_to`` (the card's folder)."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(template_dir)),
                                  jinja2.FunctionLoader(task_section)])
    env = jinja2.Environment(loader=loader,
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, digits=1: f"{100 * float(v):.{digits}f}%"
    env.filters["num"] = lambda v, digits=4: f"{float(v):.{digits}f}"
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2)
    env.filters["path"] = lambda v: display_path(v, relative_to)
    return env.get_template("card.md.j2").render(**asdict(data))


def write_card(out_dir: str | Path, *, evaluation_dir: str | Path,
               training_dir: str | Path | None = None,
               extra_evaluation_dir: str | Path | None = None, model_name: str = DEFAULT_MODEL,
               template_dir: str | Path | None = None) -> Path:
    """Render README.md into ``out_dir`` and copy the images it shows next to it."""
    out_dir, evaluation_dir = Path(out_dir), Path(evaluation_dir)
    template_dir = Path(template_dir) if template_dir else default_template_dir()
    data = load_card_data(model_name, template_dir, evaluation_dir,
                          Path(training_dir) if training_dir else None,
                          Path(extra_evaluation_dir) if extra_evaluation_dir else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_card(data, template_dir, relative_to=out_dir.resolve())
    for rel in data.images.values():
        shutil.copy2(evaluation_dir / rel, out_dir / Path(rel).name)
    (out_dir / "README.md").write_text(text)
    return out_dir / "README.md"
