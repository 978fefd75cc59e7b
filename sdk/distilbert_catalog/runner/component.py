"""Run an Azure ML command component on this machine, offline.

The component YAML is the same file ``az ml component create`` takes, read with azure-ai-ml's own
``load_component`` (its schema: typed inputs with defaults, optional, enum, min and max; what the
service would refuse is refused here, with azure-ai-ml's message). The runner keeps only what
azure-ai-ml cannot do offline: checking values against those inputs, putting them into the
command, and running it. The ``command`` template is
split into tokens with :mod:`shlex` *before* any value is put in, and values are substituted inside
those tokens, so a value with spaces, quotes or ``;`` always arrives as one argv item and nothing
ever goes through a shell.

Differences from a cloud run: the component's ``environment`` is ignored (the command runs with this
Python, ``sys.executable``), there is no shell (``&&``, pipes and redirections in a command are
refused with an error), and ``$VAR`` references in the template are passed through literally.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import shlex
import subprocess
import sys
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Mapping, TextIO

import yaml

from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.distributed import Distribution, DistributionError, run_distributed
from distilbert_catalog.runner.process import stop
from distilbert_catalog.runner.warm import WarmStarter

__all__ = [
    "RunnerError",
    "ComponentRunError",
    "load_spec",
    "spec_from_component",
    "build_argv",
    "run_component",
    "PATH_TYPES",
]


class RunnerError(CatalogError, ValueError):
    """A component spec, pipeline or input value the local runner cannot use; the message says why."""


class ComponentRunError(CatalogError, RuntimeError):
    """A component's command ran and exited with a non-zero code."""

    def __init__(self, message: str, *, component: str, returncode: int, output_tail: str = ""):
        self.component, self.returncode, self.output_tail = component, returncode, output_tail
        super().__init__(message)


#: Input/output types whose values are local paths.
PATH_TYPES = frozenset({"uri_file", "uri_folder", "custom_model", "mlflow_model", "triton_model", "mltable"})
_FILE_TYPES = frozenset({"uri_file"})
_FOLDER_TYPES = frozenset({"uri_folder", "mltable"})

_EXPR = re.compile(r"\$\{\{\s*([^{}]*?)\s*\}\}")
_REF = re.compile(r"(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
_SHELL_CHARS = frozenset(";&|<>`")
_REMOTE = re.compile(r"^(azureml:|[A-Za-z][A-Za-z0-9+.-]*://)")


# --------------------------------------------------------------------------------------------------
# Loading


def read_yaml(path: str | os.PathLike, what: str) -> tuple[Path, Any]:
    """``(absolute path, yaml.safe_load of the file)``; errors name ``what`` was expected."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise RunnerError(f"{what} not found: {path}")
    try:
        return path, yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunnerError(f"{path}: not valid YAML: {exc}") from exc


def azure_load(loader_name: str, path: Path, what: str):
    """``azure.ai.ml.<loader_name>(source=path)``, offline; its validation errors (which say what
    is wrong and where) become a :class:`RunnerError` naming the file."""
    import azure.ai.ml

    try:
        with warnings.catch_warnings():  # experimental-class notices, not problems of the file
            warnings.simplefilter("ignore")
            return getattr(azure.ai.ml, loader_name)(source=path)
    except Exception as exc:  # noqa: BLE001 - ValidationException, ValueError, marshmallow errors
        raise RunnerError(f"{path}: not a valid {what} for Azure ML: {exc}") from None


def load_spec(path: str | os.PathLike) -> dict:
    """Read a command-component YAML with azure-ai-ml's ``load_component``.

    ``code`` is resolved against the spec's folder (default: the spec's folder itself) and stored back
    as an absolute path; ``_spec_path`` and ``_base_dir`` record where the spec came from.
    """
    path, raw = read_yaml(path, "component spec")
    if isinstance(raw, Mapping) and raw.get("type", "command") != "command":
        raise RunnerError(f"{path}: component type '{raw.get('type')}' cannot run locally; "
                          "only 'command' components can")
    return spec_from_component(azure_load("load_component", path, "component"), source=str(path))


def spec_from_component(component, *, source: str, name: str | None = None) -> dict:
    """The runner's view of an azure-ai-ml ``CommandComponent`` (loaded from a file, or a pipeline
    step's): its command, code folder, typed inputs, outputs and distribution; ``name`` replaces
    the component's own (a pipeline's components are loaded as 'azureml_anonymous')."""
    if getattr(component, "type", None) != "command":
        raise RunnerError(f"{source}: component type '{getattr(component, 'type', None)}' cannot run "
                          "locally; only 'command' components can")
    raw: dict[str, Any] = {
        "name": name or component.name, "type": "command", "command": component.command,
        "code": component.code,
        "inputs": {key: {field: value for field in ("type", "default", "optional", "enum", "min",
                                                    "max")
                         if (value := getattr(definition, field, None)) is not None}
                   for key, definition in (component.inputs or {}).items()},
        "outputs": {key: {"type": definition.type}
                    for key, definition in (component.outputs or {}).items()},
    }
    if component.distribution is not None:
        raw["distribution"] = {key: value for key in ("type", "process_count_per_instance")
                               if (value := getattr(component.distribution, key, None)) is not None}
    if getattr(component.resources, "instance_count", None) is not None:
        raw["resources"] = {"instance_count": component.resources.instance_count}
    return normalize_spec(raw, base_dir=component.base_path, source=source)


def normalize_spec(raw: Any, *, base_dir: str | os.PathLike, source: str) -> dict:
    """Check a component mapping (from a file or inline in a pipeline) and resolve its ``code``."""
    if not isinstance(raw, Mapping):
        raise RunnerError(f"{source}: a component spec must be a YAML mapping, got {type(raw).__name__}")
    spec = dict(raw)
    ctype = spec.get("type", "command")
    if ctype != "command":
        raise RunnerError(f"{source}: component type '{ctype}' cannot run locally; only 'command' components can")
    command = spec.get("command")
    if not isinstance(command, str) or not command.strip():
        raise RunnerError(f"{source}: a command component needs a non-empty 'command' string")
    for section in ("inputs", "outputs"):
        value = spec.get(section) or {}
        if not isinstance(value, Mapping):
            raise RunnerError(f"{source}: '{section}' must be a mapping of name -> definition")
        spec[section] = {str(k): (v if isinstance(v, Mapping) else {"type": v}) for k, v in value.items()}

    base = Path(base_dir).resolve()
    code = spec.get("code")
    if code is None or code == "":
        code_path = base
    else:
        if not isinstance(code, (str, os.PathLike)):
            raise RunnerError(f"{source}: 'code' must be a local path, got {code!r}")
        code_str = _strip_file_scheme(str(code))
        if _REMOTE.match(code_str) or code_str.startswith("git+"):
            raise RunnerError(f"{source}: code '{code}' is a remote reference; the local runner needs a local folder")
        code_path = (base / code_str).resolve()
        if not code_path.exists():
            raise RunnerError(f"{source}: code folder '{code}' does not exist (resolved to {code_path})")
    spec["code"] = str(code_path)
    spec["_spec_path"] = source
    spec["_base_dir"] = str(base)
    return spec


def _component_name(spec: Mapping) -> str:
    return str(spec.get("name") or Path(str(spec.get("_spec_path", "component"))).stem)


def _strip_file_scheme(value: str) -> str:
    if value.startswith("file://"):
        return value[len("file://"):]
    if value.startswith("file:"):
        return value[len("file:"):]
    return value


# --------------------------------------------------------------------------------------------------
# Values


def local_path(value: str | os.PathLike, base: Path, what: str, input_name: str) -> Path:
    """A local path (relative ones against ``base``); cloud references fail with what to do."""
    text = str(value)
    if _REMOTE.match(text) and not text.startswith("file:"):
        raise RunnerError(
            f"{what}: '{text}' is a cloud reference, which is not available offline; "
            f"pass a local copy with --input {input_name}=local/path"
        )
    path = Path(_strip_file_scheme(text)).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _is_optional(definition: Mapping) -> bool:
    return bool(definition.get("optional", False))


def render_value(value: Any) -> str:
    """How a value appears on the command line: booleans as ``True``/``False`` (as Azure ML does)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def coerce_input(name: str, definition: Mapping, value: Any, *, base_dir: Path | None = None) -> Any:
    """Check ``value`` against the declared input type and return the value to render.

    Path types are resolved to absolute paths (relative ones against ``base_dir``, default the current
    directory) and must exist. Raises :class:`RunnerError` naming the input on any mismatch.
    """
    itype = str(definition.get("type", "string"))
    where = f"input '{name}' ({itype})"

    if itype in PATH_TYPES:
        if not isinstance(value, (str, os.PathLike)):
            raise RunnerError(f"{where}: expected a local path, got {type(value).__name__} {value!r}")
        path = local_path(value, base_dir or Path.cwd(), where, name)
        if not path.exists():
            raise RunnerError(f"{where}: path does not exist: {path}")
        if itype in _FILE_TYPES and not path.is_file():
            raise RunnerError(f"{where}: expected a file, but {path} is a folder")
        if itype in _FOLDER_TYPES and not path.is_dir():
            raise RunnerError(f"{where}: expected a folder, but {path} is a file")
        return path

    if itype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise RunnerError(f"{where}: expected true or false, got {value!r}")

    if itype == "integer":
        if isinstance(value, bool):
            raise RunnerError(f"{where}: expected an integer, got boolean {value!r}")
        if isinstance(value, int):
            result: Any = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str):
            try:
                result = int(value.strip())
            except ValueError:
                raise RunnerError(f"{where}: expected an integer, got {value!r}") from None
        else:
            raise RunnerError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        _check_range(where, definition, result)
        return result

    if itype == "number":
        if isinstance(value, bool):
            raise RunnerError(f"{where}: expected a number, got boolean {value!r}")
        if isinstance(value, (int, float)):
            number, result = float(value), value
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise RunnerError(f"{where}: expected a number, got {value!r}") from None
            result = value.strip()  # keep the user's spelling, e.g. 1e-5
        else:
            raise RunnerError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        if math.isnan(number):
            raise RunnerError(f"{where}: NaN is not a valid number")
        _check_range(where, definition, number)
        return result

    # string and anything else Azure ML treats as a literal
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        result = str(value)
    elif isinstance(value, bool):
        result = render_value(value)
    else:
        raise RunnerError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
    enum = definition.get("enum")
    if enum and result not in [str(e) for e in enum]:
        raise RunnerError(f"{where}: {result!r} is not one of {', '.join(map(str, enum))}")
    return result


def _check_range(where: str, definition: Mapping, number: float) -> None:
    low, high = definition.get("min"), definition.get("max")
    if low is not None and number < float(low):
        raise RunnerError(f"{where}: {number} is below the minimum {low}")
    if high is not None and number > float(high):
        raise RunnerError(f"{where}: {number} is above the maximum {high}")


def resolve_inputs(spec: Mapping, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate names, fill defaults, coerce types. Returns name -> value (None = no value)."""
    declared: Mapping[str, Mapping] = spec.get("inputs") or {}
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(declared))
    name = _component_name(spec)
    if unknown:
        valid = ", ".join(sorted(declared)) or "(none)"
        raise RunnerError(f"component '{name}': unknown input(s) {', '.join(unknown)}; valid inputs: {valid}")

    base_dir = Path(spec["_base_dir"]) if spec.get("_base_dir") else None
    values: dict[str, Any] = {}
    missing: list[str] = []
    for key, definition in declared.items():
        value = given.get(key)
        from_default = False
        if value is None and definition.get("default") is not None:
            value, from_default = definition["default"], True
        if value is None:
            values[key] = None
            if not _is_optional(definition):
                missing.append(key)
            continue
        try:
            values[key] = coerce_input(key, definition, value, base_dir=base_dir if from_default else None)
        except RunnerError as exc:
            raise RunnerError(f"component '{name}': {exc}") from None
    if missing:
        raise RunnerError(
            f"component '{name}': required input(s) without a value: {', '.join(missing)} "
            "(give them a value, or declare them optional: true)"
        )
    return values


# --------------------------------------------------------------------------------------------------
# Command line


def _references(text: str, name: str) -> list[tuple[str, str]]:
    refs = []
    for match in _EXPR.finditer(text):
        ref = _REF.fullmatch(match.group(1))
        if not ref:
            raise RunnerError(
                f"component '{name}': unsupported expression '{match.group(0)}' in the command "
                "(only ${{inputs.NAME}} and ${{outputs.NAME}} can run locally)"
            )
        refs.append((ref.group(1), ref.group(2)))
    return refs


def _unquoted_shell_chars(template: str) -> list[str]:
    """Shell control characters outside quotes in the command template (values are never scanned)."""
    found: list[str] = []
    quote = None
    i = 0
    while i < len(template):
        char = template[i]
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                i += 1
        elif char == "\\":
            i += 1
        elif char in "'\"":
            quote = char
        elif char in _SHELL_CHARS and char not in found:
            found.append(char)
        i += 1
    return found


def build_argv(spec: Mapping, inputs: Mapping[str, Any] | None, outputs: Mapping[str, Any] | None) -> list[str]:
    """Turn the component's ``command`` into an argv list; nothing here ever goes through a shell.

    The template alone is split with :func:`shlex.split`; then ``${{inputs.NAME}}`` and
    ``${{outputs.NAME}}`` are replaced inside each token, so every value stays one argv item.
    ``$[[ ... ]]`` segments are dropped when any input they reference has no value, otherwise kept
    without the brackets. A leading ``python``/``python3`` becomes :data:`sys.executable`.
    """
    if "_base_dir" not in spec:  # a hand-made dict rather than load_spec()'s result
        spec = normalize_spec(spec, base_dir=Path.cwd(), source="<inline component>")
    name = _component_name(spec)
    values = resolve_inputs(spec, inputs)
    declared_outputs: Mapping[str, Mapping] = spec.get("outputs") or {}
    outputs = dict(outputs or {})
    unknown_outputs = sorted(set(outputs) - set(declared_outputs))
    if unknown_outputs:
        raise RunnerError(
            f"component '{name}': unknown output(s) {', '.join(unknown_outputs)}; "
            f"valid outputs: {', '.join(sorted(declared_outputs)) or '(none)'}"
        )

    template = str(spec["command"]).replace("\\\r\n", " ").replace("\\\n", " ")
    if template.count("$[[") != len(_OPTIONAL.findall(template)):
        raise RunnerError(f"component '{name}': unbalanced '$[[' ... ']]' in the command")

    def check_ref(kind: str, ref: str) -> None:
        table = values if kind == "inputs" else declared_outputs
        if ref not in table:
            raise RunnerError(
                f"component '{name}': the command uses ${{{{{kind}.{ref}}}}}, but '{ref}' is not declared "
                f"under {kind}: (declared: {', '.join(sorted(table)) or 'none'})"
            )

    def optional_segment(match: re.Match) -> str:
        body = match.group(1)
        refs = _references(body, name)
        for kind, ref in refs:
            check_ref(kind, ref)
        if any(kind == "inputs" and values[ref] is None for kind, ref in refs):
            return ""
        return body

    template = _OPTIONAL.sub(optional_segment, template)
    for kind, ref in _references(template, name):
        check_ref(kind, ref)
        if kind == "inputs" and values[ref] is None:
            raise RunnerError(
                f"component '{name}': optional input '{ref}' has no value but is used outside a "
                "$[[ ... ]] segment in the command"
            )
        if kind == "outputs" and ref not in outputs:
            raise RunnerError(f"component '{name}': no path given for output '{ref}'")

    try:
        tokens = shlex.split(template, comments=False, posix=True)
    except ValueError as exc:
        raise RunnerError(f"component '{name}': cannot split the command: {exc}") from None
    if not tokens:
        raise RunnerError(f"component '{name}': the command is empty after dropping optional segments")
    operators = _unquoted_shell_chars(template)
    if operators:
        raise RunnerError(
            f"component '{name}': the command uses shell syntax ({' '.join(operators)}: &&, pipes, "
            "redirections, ...); the local runner does not use a shell. Put the steps in a script and call that "
            "instead, or quote the character if it is meant literally."
        )

    def substitute(match: re.Match) -> str:
        kind, ref = _REF.fullmatch(match.group(1)).groups()
        return render_value(values[ref] if kind == "inputs" else outputs[ref])

    argv = [_EXPR.sub(substitute, token) for token in tokens]  # single pass: values are never rescanned
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


# --------------------------------------------------------------------------------------------------
# Running


def output_paths(spec: Mapping, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Where each declared output goes: ``output_dir/<name>`` (a folder; a file path for uri_file)."""
    root = Path(output_dir).expanduser().resolve()
    return {name: root / name for name in (spec.get("outputs") or {})}


def run_component(
    spec_path: str | os.PathLike | Mapping,
    inputs: Mapping[str, Any] | None,
    output_dir: str | os.PathLike,
    env: Mapping[str, str | None] | None = None,
    *,
    stream: TextIO | None = None,
    distribution: Mapping[str, Any] | None = None,
    warm: WarmStarter | None = None,
) -> dict[str, Path]:
    """Run one command component and return ``{output_name: path}``.

    Each declared output gets ``output_dir/<output_name>`` (created as a folder; for ``uri_file``
    outputs only ``output_dir`` is created and the path names the file to write). The command runs
    with ``cwd`` = the component's code folder, the current environment plus ``env`` (a None value
    removes a variable) and ``PYTHONUNBUFFERED=1``; its stdout/stderr are streamed to ``stream``
    (default ``sys.stdout``). A non-zero exit raises :class:`ComponentRunError`.

    A component with ``distribution: {type: pytorch}`` runs on ``process_count_per_instance`` x
    ``resources.instance_count`` local processes (``distribution`` overrides either, e.g. a
    pipeline step's values or ``--process-count``), with the environment variables Azure ML sets
    (:mod:`distilbert_catalog.runner.distributed`); one process runs the command directly, forked
    from ``warm``'s warm interpreter where that is the same as a fresh one
    (:mod:`distilbert_catalog.runner.warm`).
    """
    spec = spec_path if isinstance(spec_path, Mapping) else load_spec(spec_path)
    if "_base_dir" not in spec:
        spec = normalize_spec(spec, base_dir=Path.cwd(), source="<inline component>")
    name = _component_name(spec)
    paths = output_paths(spec, output_dir)
    argv = build_argv(spec, inputs, paths)  # validate before creating anything
    try:
        processes = Distribution.of(spec, distribution, what=f"component '{name}'")
    except DistributionError as exc:
        raise RunnerError(str(exc)) from None

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    for out, path in paths.items():
        if str((spec["outputs"][out] or {}).get("type", "uri_folder")) not in _FILE_TYPES:
            path.mkdir(parents=True, exist_ok=True)

    child_env = dict(os.environ)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[str(key)] = str(value)

    code = Path(spec["code"])
    cwd = code if code.is_dir() else code.parent
    if processes.world_size > 1:
        returncode, message = run_distributed(argv, processes, cwd=cwd, env=child_env,
                                              stream=stream or sys.stdout, name=name)
        if returncode != 0:
            raise ComponentRunError(f"{message}\n  command: {shlex.join(argv)}\n  cwd: {cwd}",
                                    component=name, returncode=returncode, output_tail=message)
        return paths
    returncode, tail = _run_streaming(argv, cwd=cwd, env=child_env, stream=stream or sys.stdout,
                                      warm=warm)
    if returncode != 0:
        raise ComponentRunError(
            f"component '{name}' failed with exit code {returncode}\n  command: {shlex.join(argv)}\n"
            f"  cwd: {cwd}" + (f"\n  last output:\n{tail}" if tail.strip() else ""),
            component=name,
            returncode=returncode,
            output_tail=tail,
        )
    return paths


def _run_streaming(argv: list[str], *, cwd: Path, env: dict, stream: TextIO,
                   warm: WarmStarter | None = None) -> tuple[int, str]:
    """Run ``argv``, copy its combined output to ``stream`` as it arrives, keep the last lines."""
    proc = warm.start(argv, cwd=cwd, env=env) if warm is not None else None
    try:
        proc = proc or subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise RunnerError(f"cannot start {argv[0]!r}: {exc}") from exc
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail: deque[str] = deque(maxlen=40)
    pending = ""
    try:
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                stream.write(text)
                stream.flush()
                pending += text
                *lines, pending = pending.split("\n")
                tail.extend(lines)
                if len(pending) > 4000:
                    tail.append(pending[-4000:])
                    pending = ""
            if not chunk:
                break
        returncode = proc.wait()
    except BaseException:  # e.g. KeyboardInterrupt: do not leave the child running
        stop(proc)
        raise
    finally:
        proc.stdout.close()
    if pending:
        tail.append(pending)
    return returncode, "\n".join(tail)
