"""Local runner for Azure ML command components: argv building, validation, running."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from distilbert_catalog.runner.component import (
    ComponentRunError,
    RunnerError,
    build_argv,
    load_spec,
    run_component,
)

# A script that records the argv it got (after --out DIR) in DIR/args.json.
RECORDER = textwrap.dedent("""\
    import json, os, sys
    args = sys.argv[1:]
    out = args[args.index("--out") + 1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "args.json"), "w") as f:
        json.dump({"argv": args, "cwd": os.getcwd(), "env": os.environ.get("RUNNER_TEST_VAR")}, f)
    print("recorded", len(args), "args")
    """)

FAILER = textwrap.dedent("""\
    import sys
    print("about to fail", flush=True)
    print("something went badly wrong", file=sys.stderr)
    sys.exit(3)
    """)

ECHO_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: echo_args
display_name: Echo args
version: "1"
code: ./src
environment: azureml:AzureML-sklearn-1.5@latest
inputs:
  text:
    type: string
  n:
    type: integer
    default: 3
    min: 1
    max: 100
  flag:
    type: boolean
    default: false
  lr:
    type: number
    optional: true
  mode:
    type: string
    default: fast
    enum: [fast, slow]
  data:
    type: uri_folder
    optional: true
  model:
    type: uri_file
    optional: true
outputs:
  out:
    type: uri_folder
command: >-
  python record.py --text ${{inputs.text}} --n=${{inputs.n}} --flag ${{inputs.flag}}
  --mode ${{inputs.mode}}
  $[[--lr ${{inputs.lr}}]]
  $[[--data ${{inputs.data}} --model ${{inputs.model}}]]
  --out ${{outputs.out}}
"""

FAIL_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: always_fails
version: "1"
code: .
environment: azureml:AzureML-sklearn-1.5@latest
outputs:
  out:
    type: uri_folder
command: python fail.py --out ${{outputs.out}}
"""

SHELL_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: uses_shell
version: "1"
environment: azureml:AzureML-sklearn-1.5@latest
outputs:
  out:
    type: uri_folder
command: cd src && python record.py --out ${{outputs.out}}
"""


def write_echo_component(root: Path) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "record.py").write_text(RECORDER)
    spec = root / "echo.yaml"
    spec.write_text(ECHO_COMPONENT)
    return spec


def write_fail_component(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fail.py").write_text(FAILER)
    spec = root / "fail.yaml"
    spec.write_text(FAIL_COMPONENT)
    return spec


def write_shell_component(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "shell.yaml"
    spec.write_text(SHELL_COMPONENT)
    return spec


@pytest.fixture()
def echo(tmp_path):
    return load_spec(write_echo_component(tmp_path))


def after_python(argv: list[str]) -> list[str]:
    assert argv[0] == sys.executable
    assert argv[1] == "record.py"
    return argv[2:]


def test_every_yaml_here_loads_with_azure_ai_ml(tmp_path):
    from azure.ai.ml import load_component

    for spec in (write_echo_component(tmp_path / "e"), write_fail_component(tmp_path / "f"),
                 write_shell_component(tmp_path / "s")):
        component = load_component(str(spec))
        assert component.type == "command"
        result = component._validate() if hasattr(component, "_validate") else None
        assert result is None or result.passed, result.error_messages


def test_load_spec_resolves_code_relative_to_spec(tmp_path):
    spec = load_spec(write_echo_component(tmp_path))
    assert spec["code"] == str((tmp_path / "src").resolve())
    no_code = load_spec(write_shell_component(tmp_path / "other"))
    assert no_code["code"] == str((tmp_path / "other").resolve())


def test_substitution_defaults_and_booleans(echo):
    argv = build_argv(echo, {"text": "hello"}, {"out": "/o"})
    assert after_python(argv) == ["--text", "hello", "--n=3", "--flag", "False", "--mode", "fast", "--out", "/o"]

    argv = build_argv(echo, {"text": "hi", "n": "7", "flag": True, "mode": "slow"}, {"out": "/o"})
    assert after_python(argv) == ["--text", "hi", "--n=7", "--flag", "True", "--mode", "slow", "--out", "/o"]

    # "true" from a command line is a boolean too, rendered the Azure ML way
    argv = build_argv(echo, {"text": "hi", "flag": "true"}, {"out": "/o"})
    assert after_python(argv)[4] == "True"


def test_optional_segments_dropped_and_kept(echo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    model = tmp_path / "model.bin"
    model.write_text("m")

    dropped = after_python(build_argv(echo, {"text": "t"}, {"out": "/o"}))
    assert "--lr" not in dropped and "--data" not in dropped and "--model" not in dropped

    kept = after_python(build_argv(echo, {"text": "t", "lr": "1e-5"}, {"out": "/o"}))
    assert kept[kept.index("--lr") + 1] == "1e-5"  # the user's spelling is kept

    # a segment with two inputs is dropped when either one has no value ...
    half = after_python(build_argv(echo, {"text": "t", "data": str(data)}, {"out": "/o"}))
    assert "--data" not in half and "--model" not in half
    # ... and kept, without brackets, when both do
    both = after_python(build_argv(echo, {"text": "t", "data": str(data), "model": str(model), "lr": 0.5},
                                   {"out": "/o"}))
    assert both[both.index("--data") + 1] == str(data.resolve())
    assert both[both.index("--model") + 1] == str(model.resolve())
    assert both[both.index("--lr") + 1] == "0.5"
    assert not any("$[[" in token or "]]" in token for token in both)


def test_values_with_shell_metacharacters_stay_one_literal_argv_item(echo, tmp_path):
    nasty = "x; rm -rf / && echo $(whoami) `id` 'q\" > /tmp/pwned | cat"
    argv = after_python(build_argv(echo, {"text": nasty}, {"out": "/o"}))
    assert argv[:2] == ["--text", nasty]
    # a value that looks like a placeholder is not expanded again
    argv = after_python(build_argv(echo, {"text": "${{outputs.out}} ${{inputs.n}}"}, {"out": "/o"}))
    assert argv[1] == "${{outputs.out}} ${{inputs.n}}"

    # and for real: the child process gets it as a single argument, nothing is executed
    sentinel = tmp_path / "PWNED"
    value = f"a b; touch {sentinel} && echo $(touch {sentinel})"
    outputs = run_component(tmp_path / "echo.yaml", {"text": value}, tmp_path / "run")
    recorded = json.loads((outputs["out"] / "args.json").read_text())
    assert recorded["argv"][:2] == ["--text", value]
    assert not sentinel.exists()


def test_unknown_input_fails_loudly_listing_valid_names(echo):
    with pytest.raises(RunnerError) as err:
        build_argv(echo, {"text": "t", "learning_rat": 1}, {"out": "/o"})
    message = str(err.value)
    assert "learning_rat" in message
    for name in ("text", "n", "flag", "lr", "mode", "data", "model"):
        assert name in message


def test_missing_required_input_names_it(echo):
    with pytest.raises(RunnerError, match=r"required input.*\btext\b"):
        build_argv(echo, {}, {"out": "/o"})
    with pytest.raises(RunnerError, match="text"):
        build_argv(echo, {"text": None}, {"out": "/o"})


@pytest.mark.parametrize(
    "inputs, pattern",
    [
        ({"n": "three"}, r"input 'n' \(integer\)"),
        ({"n": True}, r"input 'n' \(integer\)"),
        ({"n": 0}, "minimum"),
        ({"n": 1000}, "maximum"),
        ({"flag": "yes"}, r"input 'flag' \(boolean\)"),
        ({"lr": "fast"}, r"input 'lr' \(number\)"),
        ({"mode": "medium"}, "not one of"),
        ({"data": "/definitely/not/here"}, "does not exist"),
        ({"data": "azureml:my-data:1"}, "not available offline"),
    ],
)
def test_type_checks(echo, inputs, pattern):
    with pytest.raises(RunnerError, match=pattern):
        build_argv(echo, {"text": "t", **inputs}, {"out": "/o"})


def test_path_type_must_match_file_or_folder(echo, tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(RunnerError, match="expected a folder"):
        build_argv(echo, {"text": "t", "data": str(a_file)}, {"out": "/o"})
    with pytest.raises(RunnerError, match="expected a file"):
        build_argv(echo, {"text": "t", "model": str(tmp_path)}, {"out": "/o"})


def test_run_component_creates_output_folders_and_runs_in_code_folder(tmp_path, capsys):
    spec = write_echo_component(tmp_path)
    outputs = run_component(spec, {"text": "hello world", "flag": True}, tmp_path / "run",
                            env={"RUNNER_TEST_VAR": "from-env"})
    assert outputs == {"out": (tmp_path / "run" / "out").resolve()}
    recorded = json.loads((outputs["out"] / "args.json").read_text())
    assert recorded["argv"][:2] == ["--text", "hello world"]
    assert "True" in recorded["argv"]
    assert recorded["cwd"] == str((tmp_path / "src").resolve())
    assert recorded["env"] == "from-env"
    assert "recorded" in capsys.readouterr().out  # the child's output is streamed


def test_failing_component_reports_name_exit_code_and_output(tmp_path, capsys):
    spec = write_fail_component(tmp_path)
    with pytest.raises(ComponentRunError) as err:
        run_component(spec, {}, tmp_path / "run")
    assert err.value.returncode == 3
    assert err.value.component == "always_fails"
    message = str(err.value)
    assert "always_fails" in message and "exit code 3" in message
    assert "something went badly wrong" in message


def test_shell_syntax_is_refused_but_quoted_characters_are_literal(tmp_path):
    spec = load_spec(write_shell_component(tmp_path))
    with pytest.raises(RunnerError, match="does not use a shell"):
        build_argv(spec, {}, {"out": "/o"})
    quoted = dict(spec, command="python x.py --sep '|' --pattern \"a;b>c\" --out ${{outputs.out}}")
    assert build_argv(quoted, {}, {"out": "/o"})[1:] == ["x.py", "--sep", "|", "--pattern", "a;b>c", "--out", "/o"]


def test_undeclared_reference_and_unknown_output(tmp_path):
    spec = load_spec(write_echo_component(tmp_path))
    bad = dict(spec, command="python record.py --x ${{inputs.nope}} --out ${{outputs.out}}")
    with pytest.raises(RunnerError, match="nope"):
        build_argv(bad, {"text": "t"}, {"out": "/o"})
    with pytest.raises(RunnerError, match="unknown output"):
        build_argv(spec, {"text": "t"}, {"out": "/o", "extra": "/e"})


@pytest.mark.parametrize("edit, says", [
    (("type: integer", "type: integr"), "integr"),  # a type Azure ML does not know
    (("default: fast\n", "default: fast\n    minimum: 2\n"), "minimum"),  # a misspelt key
])
def test_a_spec_azure_ml_would_refuse_is_refused_before_anything_runs(tmp_path, edit, says):
    """Read with azure-ai-ml's load_component: what the service would refuse fails here too,
    with its message, and no step starts (the pipeline that uses the component fails as well)."""
    spec = write_echo_component(tmp_path)
    text = spec.read_text()
    assert edit[0] in text
    spec.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(RunnerError, match="not a valid component for Azure ML") as refused:
        run_component(spec, {"text": "t"}, tmp_path / "out")
    assert says in str(refused.value) and str(spec) in str(refused.value)
    assert not (tmp_path / "out").exists()

    from distilbert_catalog.runner.pipeline import plan_pipeline

    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\n"
                        "type: pipeline\njobs:\n  echo:\n    type: command\n"
                        "    component: ./echo.yaml\n    inputs:\n      text: t\n")
    with pytest.raises(RunnerError, match="not a valid pipeline job for Azure ML"):
        plan_pipeline(pipeline)
