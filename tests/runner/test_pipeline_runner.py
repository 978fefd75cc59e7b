"""Local runner for Azure ML pipeline-job YAML: ordering, wiring, overrides, errors."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from distilbert_catalog.runner.component import RunnerError
from distilbert_catalog.runner.pipeline import PipelineRunError, plan_pipeline, run_pipeline

# Records its tag/n and what it found in its input folders; fails on --fail True.
STEP_SCRIPT = textwrap.dedent("""\
    import argparse, json, os, sys
    p = argparse.ArgumentParser()
    p.add_argument("--tag"); p.add_argument("--n", type=int); p.add_argument("--fail")
    p.add_argument("--a"); p.add_argument("--b"); p.add_argument("--out")
    args = p.parse_args()

    def seen(folder):
        if folder is None:
            return None
        record = os.path.join(folder, "record.json")
        if os.path.exists(record):
            return json.load(open(record))
        return sorted(os.listdir(folder))

    if args.fail == "True":
        sys.exit("step asked to fail")
    with open(os.path.join(args.out, "record.json"), "w") as f:
        json.dump({"tag": args.tag, "n": args.n, "a": seen(args.a), "b": seen(args.b)}, f)
    with open(os.path.join(args.out, "parent.pid"), "w") as f:
        f.write(str(os.getppid()))
    """)

STEP_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: record_step
version: "1"
code: ./src
environment: azureml:AzureML-sklearn-1.5@latest
inputs:
  tag:
    type: string
  n:
    type: integer
    default: 1
  fail:
    type: boolean
    default: false
  a:
    type: uri_folder
    optional: true
  b:
    type: uri_folder
    optional: true
outputs:
  out:
    type: uri_folder
command: >-
  python step.py --tag ${{inputs.tag}} --n ${{inputs.n}} --fail ${{inputs.fail}}
  $[[--a ${{inputs.a}}]] $[[--b ${{inputs.b}}]] --out ${{outputs.out}}
"""

HEADER = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
settings:
  default_compute: azureml:cpu-cluster
"""

# Declared out of order on purpose: evaluate needs train and prep; train needs prep.
THREE_STEP = HEADER + """\
inputs:
  raw:
    type: uri_folder
    path: ./data
  tag: base
  epochs: 2
outputs:
  report:
    type: uri_folder
jobs:
  evaluate:
    type: command
    component: file:./components/step.yaml
    inputs:
      tag: eval
      a: ${{parent.jobs.train.outputs.out}}
      b: ${{parent.jobs.prep.outputs.out}}
    outputs:
      out: ${{parent.outputs.report}}
  train:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: ${{parent.inputs.tag}}
      n: ${{parent.inputs.epochs}}
      a: ${{parent.jobs.prep.outputs.out}}
  prep:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: prep
      a:
        type: uri_folder
        path: ${{parent.inputs.raw}}
"""

CYCLE = HEADER + """\
jobs:
  first:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: first
      a: ${{parent.jobs.third.outputs.out}}
  second:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: second
      a: ${{parent.jobs.first.outputs.out}}
  third:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: third
      a: ${{parent.jobs.second.outputs.out}}
"""

FAILING = HEADER + """\
inputs:
  break_it: true
jobs:
  bad:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: bad
      fail: ${{parent.inputs.break_it}}
  good:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: good
  after:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: after
      a: ${{parent.jobs.bad.outputs.out}}
"""

CLOUD_INPUT = HEADER + """\
inputs:
  raw:
    type: uri_folder
    path: azureml:my-dataset:1
jobs:
  prep:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: prep
      a: ${{parent.inputs.raw}}
"""

NEEDS_DATA_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: needs_data
version: "1"
code: ./src
environment: azureml:AzureML-sklearn-1.5@latest
inputs:
  data:
    type: uri_folder
outputs:
  out:
    type: uri_folder
command: python step.py --tag needs --a ${{inputs.data}} --out ${{outputs.out}}
"""

# `data` is declared without a path, and `label` uses the {value: ...} literal form.
NO_VALUE = HEADER + """\
inputs:
  data:
    type: uri_folder
  label:
    value: first
jobs:
  prep:
    type: command
    component: ./components/step.yaml
    inputs:
      tag: ${{parent.inputs.label}}
  consume:
    type: command
    component: ./components/needs_data.yaml
    inputs:
      data: ${{parent.inputs.data}}
"""

PIPELINES = {"three.yaml": THREE_STEP, "cycle.yaml": CYCLE, "failing.yaml": FAILING,
             "cloud.yaml": CLOUD_INPUT, "novalue.yaml": NO_VALUE}


@pytest.fixture()
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "components" / "src").mkdir(parents=True)
    (root / "components" / "src" / "step.py").write_text(STEP_SCRIPT)
    (root / "components" / "step.yaml").write_text(STEP_COMPONENT)
    (root / "components" / "needs_data.yaml").write_text(NEEDS_DATA_COMPONENT)
    (root / "data").mkdir()
    (root / "data" / "raw.txt").write_text("raw data")
    for name, text in PIPELINES.items():
        (root / name).write_text(text)
    return root


def record(path: Path) -> dict:
    return json.loads((path / "record.json").read_text())


def test_every_yaml_here_loads_with_azure_ai_ml(project):
    from azure.ai.ml import load_component, load_job

    for component in ("step.yaml", "needs_data.yaml"):
        assert load_component(str(project / "components" / component)).type == "command"
    for name in PIPELINES:
        job = load_job(str(project / name))
        assert job.type == "pipeline", name
    # the well-formed ones also pass the SDK's own client-side validation
    for name in ("three.yaml", "failing.yaml", "cloud.yaml", "novalue.yaml"):
        job = load_job(str(project / name))
        if hasattr(job, "_validate"):
            result = job._validate()
            assert result.passed, (name, result.error_messages)


def test_three_steps_run_in_dependency_order_and_wire_outputs(project, tmp_path):
    lines: list[str] = []
    out = tmp_path / "runs"
    result = run_pipeline(project / "three.yaml", output_dir=out, progress=lines.append)

    running = [line.split(":")[0] for line in lines if ": running" in line]
    assert running == ["[1/3] prep", "[2/3] train", "[3/3] evaluate"]
    # named as the component YAML names it (azure-ai-ml loads a pipeline's as 'azureml_anonymous')
    assert all(line.endswith(": running record_step ...") for line in lines if ": running" in line)
    assert sum(": done in " in line for line in lines) == 3
    assert lines[1].startswith("[1/3] prep: done in ") and lines[1].endswith("s")

    steps = result["steps"]
    assert set(steps) == {"prep", "train", "evaluate"}
    for step in steps:
        assert steps[step]["out"] == (out / step / "out").resolve()
    assert result["outputs"] == {"report": steps["evaluate"]["out"]}

    prep, train, evaluate = (record(steps[s]["out"]) for s in ("prep", "train", "evaluate"))
    assert prep == {"tag": "prep", "n": 1, "a": ["raw.txt"], "b": None}  # relative path: pipeline folder
    assert train == {"tag": "base", "n": 2, "a": prep, "b": None}
    assert evaluate == {"tag": "eval", "n": 1, "a": train, "b": prep}


@pytest.mark.parametrize("fresh", ["0", "1"])
def test_steps_fork_from_one_warm_interpreter_unless_turned_off(project, tmp_path, monkeypatch, fresh):
    """Warm starts (runner/warm.py): every step of a run is forked from one warm interpreter, not
    started by the runner; DISTILBERT_CATALOG_FRESH_STEPS=1 starts each one fresh."""
    monkeypatch.setenv("DISTILBERT_CATALOG_FRESH_STEPS", fresh)
    result = run_pipeline(project / "three.yaml", output_dir=tmp_path / "runs", progress=None)
    parents = {int((out["out"] / "parent.pid").read_text()) for out in result["steps"].values()}
    if fresh == "1":
        assert parents == {os.getpid()}
    else:
        assert len(parents) == 1 and os.getpid() not in parents


def test_plan_orders_without_running(project):
    plan = plan_pipeline(project / "three.yaml")
    assert plan["order"] == ["prep", "train", "evaluate"]


def test_user_inputs_override_pipeline_inputs(project, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere" / "data2"
    other.mkdir(parents=True)
    (other / "other.txt").write_text("x")
    monkeypatch.chdir(tmp_path / "elsewhere")  # user paths are relative to where the user is
    result = run_pipeline(project / "three.yaml", inputs={"tag": "override", "epochs": "5", "raw": "data2"},
                          output_dir=tmp_path / "runs", progress=None)
    train = record(result["steps"]["train"]["out"])
    assert train["tag"] == "override" and train["n"] == 5
    assert train["a"]["a"] == ["other.txt"]


def test_unknown_pipeline_input_lists_valid_names(project, tmp_path):
    with pytest.raises(RunnerError) as err:
        run_pipeline(project / "three.yaml", inputs={"epoch": 3}, output_dir=tmp_path / "runs", progress=None)
    assert "epoch" in str(err.value)
    for name in ("raw", "tag", "epochs"):
        assert name in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cycle_is_an_error(project, tmp_path):
    with pytest.raises(RunnerError, match="cycle") as err:
        run_pipeline(project / "cycle.yaml", output_dir=tmp_path / "runs", progress=None)
    for step in ("first", "second", "third"):
        assert step in str(err.value)


def test_cloud_asset_input_needs_a_local_override(project, tmp_path):
    with pytest.raises(RunnerError, match=r"not available offline.*--input raw="):
        run_pipeline(project / "cloud.yaml", output_dir=tmp_path / "runs", progress=None)
    result = run_pipeline(project / "cloud.yaml", inputs={"raw": str(project / "data")},
                          output_dir=tmp_path / "runs", progress=None)
    assert record(result["steps"]["prep"]["out"])["a"] == ["raw.txt"]


def test_missing_value_fails_before_anything_runs(project, tmp_path):
    with pytest.raises(RunnerError, match=r"step 'consume'.*--input data="):
        run_pipeline(project / "novalue.yaml", output_dir=tmp_path / "runs", progress=None)
    assert not (tmp_path / "runs" / "prep").exists()  # checked up front: step 1 never started
    result = run_pipeline(project / "novalue.yaml", inputs={"data": str(project / "data")},
                          output_dir=tmp_path / "runs", progress=None)
    assert record(result["steps"]["prep"]["out"])["tag"] == "first"
    assert record(result["steps"]["consume"]["out"])["a"] == ["raw.txt"]


def test_failed_step_stops_the_pipeline(project, tmp_path):
    lines: list[str] = []
    with pytest.raises(PipelineRunError, match="'bad' failed") as err:
        run_pipeline(project / "failing.yaml", output_dir=tmp_path / "runs", progress=lines.append)
    assert err.value.failed == ["bad"]
    assert "good" not in err.value.result["steps"]
    assert any("bad: failed after" in line for line in lines)


def test_continue_on_step_failure_runs_independent_steps(project, tmp_path):
    lines: list[str] = []
    with pytest.raises(PipelineRunError) as err:
        run_pipeline(project / "failing.yaml", output_dir=tmp_path / "runs", progress=lines.append,
                     settings_overrides={"continue_on_step_failure": True})
    assert err.value.failed == ["bad"] and err.value.skipped == ["after"]
    assert "good" in err.value.result["steps"]
    assert any("after: skipped" in line for line in lines)

    # and with the failure switched off through an input, everything runs
    result = run_pipeline(project / "failing.yaml", inputs={"break_it": False},
                          output_dir=tmp_path / "runs2", progress=None)
    assert set(result["steps"]) == {"bad", "good", "after"}
