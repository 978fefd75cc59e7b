"""Model pages and the index: rendered from evaluation metrics.json files; no dead link; every
number in an evaluation table equals its metrics file."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import distilbert_catalog as dc
from distilbert_catalog.metrics_file import read_metrics
from distilbert_catalog.model_assets import MODELS, cards_root
from distilbert_catalog.model_pages import DIGITS, render_index
from distilbert_catalog.samples import sample_dir

from tests.support import EMOTION_LABELS

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def dead_links(page: Path) -> list[str]:
    """Relative links in a markdown file that point at nothing."""
    dead = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            dead.append(target)
    return dead


@pytest.fixture(scope="module")
def metrics_files(tiny_model, tmp_path_factory):
    """metrics.json of three evaluation runs on the tiny model: emotion (after 2 fine-tuning
    steps), QA (a fresh head) and fill-mask."""
    from distilbert_catalog.tiny import with_task_head

    out = tmp_path_factory.mktemp("page-evals")
    emotion = dc.finetune("text-classification", output_dir=out / "tc-model",
                          model_name=str(tiny_model), train_data=str(sample_dir("emotion")),
                          label_names=EMOTION_LABELS, max_steps=2)
    dc.evaluate("text-classification", output_dir=out / "tc",
                mlflow_model_path=str(emotion.mlflow_model_dir),
                test_data=str(sample_dir("emotion")), label_names=EMOTION_LABELS)
    qa_model = with_task_head(tiny_model, "question-answering", out / "qa-model")
    dc.evaluate("question-answering", output_dir=out / "qa", model_name=str(qa_model),
                test_data=str(sample_dir("squad_v2")), max_seq_length=128, doc_stride=32)
    dc.evaluate("fill-mask", output_dir=out / "fm", model_name=str(tiny_model),
                test_data=str(sample_dir("wikipedia_mask_filling")), pseudo_perplexity_samples=4)
    return {"text-classification": out / "tc" / "metrics.json",
            "question-answering": out / "qa" / "metrics.json",
            "fill-mask": out / "fm" / "metrics.json"}


@pytest.fixture(scope="module")
def pages(metrics_files, tmp_path_factory):
    """All five pages and the index, rendered into a fresh folder (one through the CLI)."""
    out = tmp_path_factory.mktemp("pages")
    rendered = {}
    for name in MODELS[1:]:
        given = [metrics_files["question-answering"]] if "squad" in name else \
            [metrics_files["fill-mask"], metrics_files["text-classification"]]
        rendered[name] = (dc.model_page(name, given, out / name), given)
    name, given = MODELS[0], list(metrics_files.values())
    subprocess.run([sys.executable, "-m", "distilbert_catalog.cli", "card", "--model", name,
                    "--output-dir", str(out / name), "--metrics", *map(str, given)], check=True)
    rendered[name] = (out / name / "README.md", given)
    index = render_index(out, pages={n: p for n, (p, _) in rendered.items()})
    return rendered, index


def table_rows(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


EVAL_HEADER = "| Task | Dataset | Split | Examples | Evaluated weights | Metric | Value |"


def test_every_number_in_the_evaluation_table_is_its_metrics_file(pages):
    rendered, _ = pages
    for name, (page, given) in rendered.items():
        rows = table_rows(page.read_text(), EVAL_HEADER)
        expected = []
        for path in given:
            record = read_metrics(path)
            expected += [[record["task"], Path(record["dataset"]).name, record["split"],
                          str(record["n_examples"]), metric, f"{value:.{DIGITS}f}"]
                         for metric, value in record["metrics"].items()]
        assert [r[:4] + r[5:] for r in rows] == expected, name
        assert all("(stand-in)" in r[4] for r in rows)  # none measured the hub checkpoint


def test_tasks_without_metrics_say_not_evaluated_yet(pages):
    rendered, _ = pages
    squad = rendered["distilbert-base-cased-distilled-squad"][0].read_text()
    assert "not evaluated yet" not in squad
    cased = rendered["distilbert-base-cased"][0].read_text()
    assert "- fill-mask: not evaluated yet." not in cased
    committed = (cards_root() / "distilbert-base-cased-distilled-squad" / "README.md").read_text()
    assert "- question-answering: not evaluated yet." in committed
    assert EVAL_HEADER not in committed


def test_no_dead_link_in_pages_index_or_committed_cards(pages):
    rendered, index = pages
    files = [index, *(p for p, _ in rendered.values()), cards_root() / "README.md",
             *(cards_root() / m / "README.md" for m in MODELS)]
    counted = 0
    for page in files:
        assert dead_links(page) == [], page
        counted += len(LINK.findall(page.read_text()))
    assert counted > 100
    text = rendered["distilbert-base-uncased"][0].read_text()
    for linked in ("emotion-detection.ipynb", "named-entity-recognition.ipynb",
                   "fill-mask-batch-endpoint.ipynb", "local/extractive-qa.sh"):
        assert linked in text


def test_sample_and_plots_come_from_the_evaluation(pages, metrics_files):
    rendered, _ = pages
    page, _ = rendered["distilbert-base-uncased"]
    text = page.read_text()
    # the first metrics file given with a sample: the emotion evaluation's real request/response
    sample = json.loads((metrics_files["text-classification"].parent / "sample.json").read_text())
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.S)
    assert [json.loads(b) for b in blocks] == [sample["request"], sample["response"]]
    plots = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(plots) >= 3 and all((page.parent / p).stat().st_size > 1000 for p in plots)
    assert "66M parameters" in text and "F1 86.9" not in text
    assert "{{" not in text and "None" not in text


def test_unknown_model_names_the_catalog(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "distilbert_catalog.cli", "card", "--model",
                           "bert-base", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no model asset 'bert-base'" in proc.stderr and "distilbert-base-cased" in proc.stderr
