"""The package's layers: imports point down only, with no cycle, function-level imports included.

Every module of ``distilbert_catalog`` belongs to one layer; a module may import from its own layer
or any layer below, never above, and the import graph has no cycle at all. Task folders are
plug-ins: a task imports shared task code (``tasks.base`` and the other shared modules), never
another task. The graph is read from the source (every ``import`` statement anywhere in a module,
including those inside functions), so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import shutil
from pathlib import Path

PACKAGE = "distilbert_catalog"
#: found without importing the package (the check reads source; it runs nothing)
PACKAGE_DIR = Path(importlib.util.find_spec(PACKAGE).submodule_search_locations[0])

#: bottom first; patterns are module names relative to the package ("" is the package itself)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "process_exit", "defaults", "assets", "hardware", "precision", "ranks", "arguments",
                    "data", "metrics_file", "modeling", "tracking", "backends", "qat", "samples",
                    "samples.*", "model_assets")),
    ("tasks", ("tasks", "tasks.*")),
    ("inference", ("inference", "serving.limits", "serving.request_parsing")),
    ("packaging", ("mlflow_model",)),
    ("workflows", ("training", "distillation", "evaluation", "quality_gate", "cards", "model_pages")),
    ("top", ("", "api", "cli", "components", "quickstart", "runner", "runner.*", "serving",
             "serving.*", "tiny", "pretrained", "mlm_head", "workspace")),
]


def modules(root: Path) -> dict[str, Path]:
    """Module name (relative to the package) -> source file."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[0] == "_assets":  # the catalog's files (component entry scripts), not modules
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its source."""
    mods = modules(root)

    def owner(name: str) -> str | None:
        while name not in mods:
            if not name:
                return None
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == PACKAGE:
                    module = node.module.partition(".")[2]
                else:
                    continue
                targets = [f"{module}.{a.name}".strip(".") if f"{module}.{a.name}".strip(".")
                           in mods else module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.partition(".")[2] for a in node.names
                           if a.name.split(".")[0] == PACKAGE]
            for target in targets:
                found = owner(target)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def layer_of(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return index
    raise LookupError(module)


def task_folder(module: str) -> str | None:
    """The task folder a module belongs to (``tasks.fill_mask.engine`` -> ``fill_mask``)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "tasks" and len(parts) > 1 else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(root: Path) -> list[str]:
    """Every broken rule of the package at ``root``, as readable lines (empty when all hold)."""
    graph = import_graph(root)
    found = [f"{m} is in no layer; add it to LAYERS" for m in sorted(graph)
             if not _placed(m)]
    shared = {m for m in graph if task_folder(m) and not (root / "tasks" / task_folder(m)).is_dir()}
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if _placed(module) and _placed(target) and layer_of(target) > layer_of(module):
                found.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]}), a higher layer")
            mine, theirs = task_folder(module), task_folder(target)
            if mine and theirs and mine != theirs and module not in shared \
                    and target not in shared:
                found.append(f"task {mine} imports task {theirs} ({module} -> {target}); share "
                             "code through tasks.base or a shared tasks module")
    found += [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    return found


def _placed(module: str) -> bool:
    try:
        layer_of(module)
        return True
    except LookupError:
        return False


def test_imports_point_down_without_cycles():
    assert problems(PACKAGE_DIR) == []


def test_graph_sees_function_level_and_absolute_imports():
    graph = import_graph(PACKAGE_DIR)
    assert "inference" in graph["mlflow_model"]
    assert "backends" in graph["inference"]
    assert graph[""] >= {"api"}


def test_a_cycle_or_upward_import_fails(tmp_path):
    """The same check on a copy of the package with one import added inside a function of a
    bottom module (the kind of edge that hid the old training -> ... -> training cycle)."""
    copy = tmp_path / PACKAGE
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors",
                                                                    "*.jsonl", "*.txt"))
    assert problems(copy) == []
    data = copy / "data.py"
    data.write_text(data.read_text() + "\n\ndef _late():\n    from .training import finetune\n"
                    "    return finetune\n")
    found = problems(copy)
    assert "data (foundation) imports training (workflows), a higher layer" in found
    assert any(line.startswith("import cycle:") and "data" in line and "training" in line
               for line in found)


def test_a_task_importing_another_task_fails(tmp_path):
    copy = tmp_path / PACKAGE
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors",
                                                                    "*.jsonl", "*.txt"))
    engine = copy / "tasks" / "fill_mask" / "engine.py"
    engine.write_text(engine.read_text() + "\nfrom distilbert_catalog.tasks.question_answering "
                      "import engine as qa_engine  # noqa\n")
    assert any(line.startswith("task fill_mask imports task question_answering")
               for line in problems(copy))


def test_orchestrating_code_loads_neither_pytorch_nor_mlflow():
    """A notebook kernel or a CLI parent that only starts pipelines, servers and batch jobs stays
    light: the steps, servers and workers it starts load the heavy libraries (measured: 11.7 s of
    CPU per notebook kernel before, 2 s after)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import distilbert_catalog as dc\n"
        "from distilbert_catalog import api, cli, tracking\n"
        "from distilbert_catalog.runner import batch, endpoints, pipeline\n"
        "from distilbert_catalog.serving import SCORE_SCRIPT\n"
        "api.pipeline_job('emotion-detection', model_name='m')\n"
        "tracking.child_env()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', "
        "'mlflow', 'datasets'}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "[]"
