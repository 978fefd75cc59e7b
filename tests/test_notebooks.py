"""Every notebook executes in local mode, in a fresh kernel, with its size knobs set small.

Like papermill, the test adds one cell after the cell tagged ``parameters`` that overrides the
knobs; the notebooks in the repository keep their full sizes and no outputs.
"""

import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: every notebook the model pages link to (named-entity-recognition is token-classification's
#: catalog name: a link to the same file)
NAMES = ["emotion-detection", "token-classification", "extractive-qa",
         "evaluate-model-question-answering", "evaluate-model-fill-mask",
         "question-answering-online-endpoint", "fill-mask-online-endpoint",
         "fill-mask-batch-endpoint"]
SMALL = {"TINY": True, "EPOCHS": 1, "LEARNING_RATE": 0.002, "MAX_SEQ_LENGTH": 128, "DOC_STRIDE": 32,
         "PSEUDO_PERPLEXITY_SAMPLES": 4, "ROWS": 6}
#: per notebook: a tenth of an epoch of the 1,848 NER / 1,204 QA training rows (mechanics only)
SMALLER = {"token-classification": {"EPOCHS": 0.1}, "extractive-qa": {"EPOCHS": 0.1}}


def test_the_folder_holds_exactly_the_linked_notebooks():
    names = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert names == {*NAMES, "named-entity-recognition"}
    alias = NOTEBOOKS / "named-entity-recognition.ipynb"
    assert alias.resolve() == (NOTEBOOKS / "token-classification.ipynb").resolve()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean_and_local_by_default(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'MODE = "local"' in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code)
    # only the SDK: no import of the package's internals
    for cell in code:
        assert "from distilbert_catalog." not in cell.source
        assert "import distilbert_catalog." not in cell.source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_local_mode(name, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    knobs = {k: v for k, v in {**SMALL, **SMALLER.get(name, {})}.items()
             if f"\n{k} = " in "\n" + nb.cells[index].source}
    knobs["OUTPUT_DIR"] = str(tmp_path / "outputs")
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {v!r}" for k, v in knobs.items())))
    started = time.time()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"{name}: {time.time() - started:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []
