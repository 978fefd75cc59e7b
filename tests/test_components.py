"""Component specs and Python arguments have one source of truth; every YAML loads in azure-ai-ml."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from distilbert_catalog.components import COMPONENTS, fields, parse, render_spec
from distilbert_catalog.runner.component import build_argv, load_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("folder", sorted(COMPONENTS))
def test_committed_spec_is_generated_from_the_dataclasses(folder):
    component = COMPONENTS[folder]
    assert (REPO / component.path).read_text() == render_spec(component), (
        "spec.yaml is out of date: run `distilbert-catalog specs --write`")


@pytest.mark.parametrize("folder", sorted(COMPONENTS))
def test_spec_inputs_match_python_arguments(folder):
    """Names, types, defaults and optionality agree field by field, and the command passes all."""
    component = COMPONENTS[folder]
    with open(REPO / component.path) as f:
        spec = yaml.safe_load(f)
    args = {f.name: f for f in fields(component)}
    assert list(spec["inputs"]) == list(args)
    for name, field in args.items():
        declared = spec["inputs"][name]
        default = None if field.default is dataclasses.MISSING else field.default
        assert declared.get("default") == default, name
        assert bool(declared.get("optional")) == ("Optional" in str(field.type)), name
        assert declared["description"] == field.metadata["help"]
        assert f"--{name} ${{{{inputs.{name}}}}}" in spec["command"]
    assert set(spec["outputs"]) == set(component.outputs)


@pytest.mark.parametrize("folder", sorted(COMPONENTS))
def test_the_argv_azure_ml_would_build_parses(folder, tmp_path):
    """Render the command like Azure ML (defaults filled, optional segments dropped) and parse it."""
    component = COMPONENTS[folder]
    spec = load_spec(REPO / component.path)
    required = {}
    for name, declared in spec["inputs"].items():
        if not declared.get("optional") and "default" not in declared:
            required[name] = str(tmp_path)
    outputs = {name: str(tmp_path / name) for name in component.outputs}
    argv = build_argv(spec, required, outputs)
    assert argv[1] == "run.py"
    parsed, parsed_outputs = parse(component, argv[2:])
    for instance in parsed:
        for field in dataclasses.fields(instance):
            expected = required.get(field.name, field.default)
            if expected is dataclasses.MISSING:
                expected = None
            assert getattr(instance, field.name) == expected, field.name
    assert vars(parsed_outputs) == outputs


def test_a_typo_in_arguments_fails_loudly():
    with pytest.raises(SystemExit):
        parse(COMPONENTS["finetune/text_classification"],
              ["--learning_rat", "1e-4", "--pytorch_model_folder", "a",
               "--mlflow_model_folder", "b", "--metrics", "c"])


def yaml_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.yaml"))


@pytest.mark.parametrize("path", yaml_files("components"), ids=lambda p: str(p.relative_to(REPO)))
def test_component_yaml_loads_and_validates(path):
    from azure.ai.ml import load_component, load_online_deployment, load_online_endpoint
    from azure.ai.ml import load_batch_deployment, load_batch_endpoint

    with open(path) as f:
        doc = yaml.safe_load(f)
    assert "$schema" in doc
    schema = doc["$schema"]
    loader = {"commandComponent": load_component,
              "managedOnlineDeployment": load_online_deployment,
              "managedOnlineEndpoint": load_online_endpoint,
              "batchDeployment": load_batch_deployment,
              "modelBatchDeployment": load_batch_deployment,
              "batchEndpoint": load_batch_endpoint}[schema.rsplit("/", 1)[-1].split(".")[0]]
    entity = loader(source=path)
    result = entity._validate() if hasattr(entity, "_validate") else None
    if result is not None:
        assert result.passed, result.error_messages
    code_config = getattr(entity, "code_configuration", None)
    if code_config is not None:  # deployments: the scoring script must exist where it points
        assert (path.parent / code_config.code / code_config.scoring_script).is_file()


@pytest.mark.parametrize("path", yaml_files("pipelines"), ids=lambda p: p.name)
def test_pipeline_yaml_loads_and_validates(path):
    from azure.ai.ml import load_job

    job = load_job(source=path)
    result = job._validate()
    assert result.passed, result.error_messages
    with open(path) as f:
        assert "$schema" in yaml.safe_load(f)


@pytest.mark.parametrize("path", sorted((REPO / "environments").glob("*/environment.yaml")),
                         ids=lambda p: p.parent.name)
def test_environment_yaml_loads_and_is_referenced(path):
    from azure.ai.ml import load_environment

    env = load_environment(source=path)
    context = path.parent / env.build.path
    assert (context / "Dockerfile").exists()
    requirements = (context / "requirements.txt").read_text().splitlines()
    pins = [r for r in requirements if r and not r.startswith("#")]
    assert pins and all("==" in r for r in pins), "environment requirements must be pinned"
    # CPU SKUs: the CPU build of torch, from PyTorch's CPU index (the default index's is CUDA)
    assert "torch==2.13.0+cpu" in pins
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in \
        (context / "Dockerfile").read_text()
    referenced = {yaml.safe_load((REPO / c.path).read_text())["environment"]
                  for c in COMPONENTS.values()}
    assert f"azureml:{env.name}@latest" in referenced


@pytest.mark.parametrize("name", ["inference", "training"])
def test_environment_pins_are_within_the_catalogs_own_ranges(name):
    """An image pins versions the catalog declares it works with (pyproject.toml), and has
    azureml-mlflow, which is what makes MLflow track to the Azure ML workspace. Whether the pins
    install together needs an index: tests/test_environments.py (opt-in) installs them."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    ranges = {canonicalize_name(r.name): r.specifier
              for r in map(Requirement, requires("distilbert-catalog")) if r.marker is None}
    context = REPO / "environments" / name / "context"
    pins = [Requirement(line) for line in (context / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    outside = [str(p) for p in pins if canonicalize_name(p.name) in ranges
               and not ranges[canonicalize_name(p.name)].contains(
                   next(iter(p.specifier)).version, prereleases=True)]
    assert not outside, f"pinned outside pyproject.toml's ranges: {outside}"
    assert "azureml-mlflow" in {canonicalize_name(p.name) for p in pins}


def test_deployments_name_only_cpu_skus_the_cpu_environments_serve():
    """The environments install CPU torch only; a GPU SKU (Standard_N*) named by a deployment
    or pipeline would need a GPU variant of the environment first."""
    named = []
    for path in [*yaml_files("components/deploy"), *yaml_files("pipelines")]:
        with open(path) as f:
            data = yaml.safe_load(f)
        named += [data.get("instance_type"), data.get("compute"),
                  (data.get("settings") or {}).get("default_compute")]
    named = {n for n in named if n}
    assert named and not [n for n in named if "Standard_N" in n or "gpu" in n.lower()], named


def test_finetune_components_declare_pytorch_distribution_on_one_process():
    """Azure ML starts process_count_per_instance x instance_count processes; the default is one."""
    finetune = [c for c in COMPONENTS.values() if c.stage == "finetune"]
    assert finetune
    for component in finetune:
        spec = load_spec(REPO / component.path)
        assert spec["distribution"] == {"type": "pytorch", "process_count_per_instance": 1}
        assert spec["resources"] == {"instance_count": 1}


@pytest.mark.parametrize("path", yaml_files("pipelines"), ids=lambda p: p.name)
def test_pipelines_scale_their_finetune_steps_from_two_inputs(path):
    """As the Azure ML registry's fine-tune pipelines do: instance_count and
    process_count_per_instance are pipeline inputs (default 1) bound to the fine-tune step."""
    from azure.ai.ml import load_job

    with open(path) as f:
        doc = yaml.safe_load(f)
    steps = [name for name, job in doc["jobs"].items() if "/finetune/" in job["component"]]
    if not steps:
        assert "process_count_per_instance" not in doc["inputs"]
        return
    assert doc["inputs"]["instance_count"] == doc["inputs"]["process_count_per_instance"] == 1
    job = load_job(source=path)
    for name in steps:
        step = job.jobs[name]
        assert step.distribution.process_count_per_instance == \
            "${{parent.inputs.process_count_per_instance}}"
        assert step.resources.instance_count == "${{parent.inputs.instance_count}}"
