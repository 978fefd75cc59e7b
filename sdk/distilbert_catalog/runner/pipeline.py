"""Run an Azure ML pipeline-job YAML on this machine, offline, one command step after another.

Supported: ``type: pipeline`` with top-level ``inputs`` (literals, or ``{type, path}`` with a local
path relative to the pipeline YAML) and ``outputs``; ``jobs`` of ``type: command`` whose
``component`` is a local YAML (``./x.yaml`` or ``file:./x.yaml``) or an inline component mapping;
job inputs that are literals, ``${{parent.inputs.X}}``, ``${{parent.jobs.STEP.outputs.Y}}`` or
``{type, path}`` mappings; job outputs bound to ``${{parent.outputs.Z}}``; job
``environment_variables``. Compute, environments, and most ``settings`` are ignored locally;
``settings.continue_on_step_failure`` is honoured.

Everything is checked (names, references, required inputs, dependency cycles) before the first
step runs, so a typo fails in a second, not after an hour of training.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping


from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.component import (
    PATH_TYPES,
    ComponentRunError,
    RunnerError,
    _component_name,
    _is_optional,
    _REMOTE,
    azure_load,
    local_path,
    read_yaml,
    run_component,
    spec_from_component,
)
from distilbert_catalog.runner.warm import WarmStarter

__all__ = ["PipelineRunError", "load_pipeline", "plan_pipeline", "run_pipeline"]

_BINDING = re.compile(r"^\s*\$\{\{\s*parent\.(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
_STEP_BINDING = re.compile(
    r"^\s*\$\{\{\s*parent\.jobs\.([A-Za-z_][A-Za-z0-9_]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$"
)


class PipelineRunError(CatalogError, RuntimeError):
    """One or more steps failed. ``result`` holds what finished; ``failed``/``skipped`` name steps."""

    def __init__(self, message: str, *, result: dict, failed: list[str], skipped: list[str]):
        self.result, self.failed, self.skipped = result, failed, skipped
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# Loading and planning


def load_pipeline(path: str | os.PathLike) -> dict:
    """``yaml.safe_load`` a pipeline-job YAML and check its outline."""
    path, doc = read_yaml(path, "pipeline YAML")
    if not isinstance(doc, Mapping):
        raise RunnerError(f"{path}: a pipeline job must be a YAML mapping")
    if doc.get("type") != "pipeline":
        raise RunnerError(f"{path}: expected 'type: pipeline', got type {doc.get('type')!r}")
    jobs = doc.get("jobs")
    if not isinstance(jobs, Mapping) or not jobs:
        raise RunnerError(f"{path}: a pipeline needs a non-empty 'jobs:' mapping")
    for section in ("inputs", "outputs", "settings"):
        if not isinstance(doc.get(section) or {}, Mapping):
            raise RunnerError(f"{path}: '{section}' must be a mapping")
    return dict(doc)


def _is_path_like_type(t: Any) -> bool:
    return str(t) in PATH_TYPES


def _pipeline_input_values(doc: Mapping, base: Path, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    declared: Mapping[str, Any] = doc.get("inputs") or {}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise RunnerError(
            f"unknown pipeline input(s) {', '.join(unknown)}; valid inputs: {', '.join(sorted(declared)) or '(none)'}"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        ptype = spec.get("type") if isinstance(spec, Mapping) else None
        if name in overrides and overrides[name] is not None:
            value = overrides[name]
            if _is_path_like_type(ptype) and isinstance(value, (str, os.PathLike)):
                value = local_path(str(value), Path.cwd(), f"pipeline input '{name}'", name)
            values[name] = value
            continue
        if isinstance(spec, Mapping):
            if spec.get("path") is not None:
                values[name] = local_path(str(spec["path"]), base, f"pipeline input '{name}'", name)
            elif spec.get("value") is not None:
                values[name] = spec["value"]
            elif spec.get("default") is not None:
                values[name] = spec["default"]
            else:
                values[name] = None
        else:
            values[name] = spec
    return values


def _bind_input(step: str, key: str, raw: Any, base: Path, pipeline_inputs: Mapping[str, Any],
                deps: set[str], refs: dict[str, tuple[str, str]]) -> Any:
    """Resolve one job input now, or record it as a reference to an upstream step's output."""
    value = raw
    if isinstance(raw, Mapping):
        if raw.get("path") is not None:
            value = raw["path"]
        elif "value" in raw:
            value = raw["value"]
        else:
            raise RunnerError(f"step '{step}': input '{key}' needs a 'path' or 'value', got {dict(raw)!r}")
        if isinstance(value, str) and not (_BINDING.match(value) or _STEP_BINDING.match(value)) \
                and "path" in raw:
            return local_path(value, base, f"step '{step}' input '{key}'", key)
    if not isinstance(value, str) or "${{" not in value:
        return value
    if m := _STEP_BINDING.match(value):
        deps.add(m.group(1))
        refs[key] = (m.group(1), m.group(2))
        return None
    m = _BINDING.match(value)
    if m and m.group(1) == "inputs":
        if m.group(2) not in pipeline_inputs:
            raise RunnerError(
                f"step '{step}': input '{key}' uses ${{{{parent.inputs.{m.group(2)}}}}}, but the pipeline "
                f"declares no such input (declared: {', '.join(sorted(pipeline_inputs)) or 'none'})"
            )
        return pipeline_inputs[m.group(2)]
    raise RunnerError(
        f"step '{step}': input '{key}' = {value!r} is not supported locally; use a literal, "
        "${{parent.inputs.X}} or ${{parent.jobs.STEP.outputs.Y}}"
    )


def plan_pipeline(pipeline_path: str | os.PathLike, inputs: Mapping[str, Any] | None = None) -> dict:
    """Load, check and order a pipeline without running anything.

    Returns ``{"doc", "base", "order", "steps": {name: {"spec", "inputs", "refs", "deps",
    "bound_outputs", "env"}}}``. Raises :class:`RunnerError` on any problem.
    """
    path = Path(pipeline_path).expanduser().resolve()
    doc = load_pipeline(path)
    base = path.parent
    pipeline_inputs = _pipeline_input_values(doc, base, inputs)
    pipeline_outputs = set((doc.get("outputs") or {}).keys())

    steps: dict[str, dict] = {}
    azure_job = None  # azure-ai-ml's PipelineJob, loaded once the outline checks pass
    for step, job in doc["jobs"].items():
        step = str(step)
        if not isinstance(job, Mapping):
            raise RunnerError(f"step '{step}': a job must be a mapping")
        jtype = job.get("type", "command")
        if jtype != "command":
            raise RunnerError(f"step '{step}': job type '{jtype}' cannot run locally; only 'command' jobs can")
        component = job.get("component")
        if component is None:
            raise RunnerError(
                f"step '{step}': inline command jobs (no 'component:') are not supported locally; "
                "move the command into a component YAML and reference it with component: ./file.yaml"
            )
        declared, source = component, f"{path} (jobs.{step}.component)"
        if not isinstance(component, Mapping):
            ref = str(component)
            if _REMOTE.match(ref) and not ref.startswith("file:"):
                raise RunnerError(
                    f"step '{step}': component '{ref}' is a registered asset, which is not available offline; "
                    "point component: at a local YAML file"
                )
            local = local_path(ref, base, f"step '{step}' component", step)
            if not local.is_file():
                raise RunnerError(f"step '{step}': component spec not found: {local}")
            declared, source = read_yaml(local, "component spec")[1], str(local)
        if azure_job is None:
            azure_job = azure_load("load_job", path, "pipeline job")
        # azure-ai-ml names a pipeline's components 'azureml_anonymous'; progress lines and errors
        # name the component as its YAML does
        name = declared.get("name") if isinstance(declared, Mapping) else None
        spec = spec_from_component(azure_job.jobs[step].component, source=source, name=name)
        declared_in = spec.get("inputs") or {}
        declared_out = spec.get("outputs") or {}

        job_inputs = job.get("inputs") or {}
        if not isinstance(job_inputs, Mapping):
            raise RunnerError(f"step '{step}': 'inputs' must be a mapping")
        unknown = sorted(set(map(str, job_inputs)) - set(declared_in))
        if unknown:
            raise RunnerError(
                f"step '{step}': component '{_component_name(spec)}' has no input(s) {', '.join(unknown)}; "
                f"valid inputs: {', '.join(sorted(declared_in)) or '(none)'}"
            )
        deps: set[str] = set()
        refs: dict[str, tuple[str, str]] = {}
        values = {str(k): _bind_input(step, str(k), v, base, pipeline_inputs, deps, refs)
                  for k, v in job_inputs.items()}

        missing = [k for k, d in declared_in.items()
                   if not _is_optional(d) and d.get("default") is None
                   and values.get(k) is None and k not in refs]
        if missing:
            hints = []
            for k in missing:
                m = _BINDING.match(str(job_inputs.get(k, ""))) if k in job_inputs else None
                hints.append(f"{k} (pipeline input '{m.group(2)}' has no value; pass --input {m.group(2)}=...)"
                             if m else k)
            raise RunnerError(f"step '{step}': required input(s) without a value: {', '.join(hints)}")

        bound_outputs: dict[str, str] = {}
        job_outputs = job.get("outputs") or {}
        if not isinstance(job_outputs, Mapping):
            raise RunnerError(f"step '{step}': 'outputs' must be a mapping")
        for out, target in job_outputs.items():
            out = str(out)
            if out not in declared_out:
                raise RunnerError(
                    f"step '{step}': component '{_component_name(spec)}' has no output '{out}'; "
                    f"valid outputs: {', '.join(sorted(declared_out)) or '(none)'}"
                )
            binding = target.get("path") if isinstance(target, Mapping) else target
            if isinstance(binding, str) and (m := _BINDING.match(binding)):
                if m.group(1) != "outputs":
                    raise RunnerError(f"step '{step}': output '{out}' can only bind to ${{{{parent.outputs.NAME}}}}")
                if pipeline_outputs and m.group(2) not in pipeline_outputs:
                    raise RunnerError(
                        f"step '{step}': output '{out}' binds to pipeline output '{m.group(2)}', which is not "
                        f"declared (declared: {', '.join(sorted(pipeline_outputs))})"
                    )
                bound_outputs[out] = m.group(2)

        distribution = _step_distribution(step, job, pipeline_inputs)
        env = job.get("environment_variables") or {}
        if not isinstance(env, Mapping):
            raise RunnerError(f"step '{step}': 'environment_variables' must be a mapping")
        steps[step] = {"spec": spec, "inputs": values, "refs": refs, "deps": deps,
                       "bound_outputs": bound_outputs, "env": {str(k): str(v) for k, v in env.items()},
                       "distribution": distribution}

    # references to other steps must name real steps and real outputs
    for step, info in steps.items():
        for key, (src, out) in info["refs"].items():
            if src not in steps:
                raise RunnerError(
                    f"step '{step}': input '{key}' uses the output of step '{src}', which does not exist "
                    f"(steps: {', '.join(steps)})"
                )
            if out not in (steps[src]["spec"].get("outputs") or {}):
                raise RunnerError(
                    f"step '{step}': input '{key}' uses output '{out}' of step '{src}', which has outputs: "
                    f"{', '.join(sorted(steps[src]['spec'].get('outputs') or {})) or 'none'}"
                )
    return {"doc": doc, "path": path, "base": base, "steps": steps, "order": _topological_order(steps)}


def _step_distribution(step: str, job: Mapping, pipeline_inputs: Mapping[str, Any]) -> dict:
    """A step's ``distribution.process_count_per_instance`` and ``resources.instance_count``
    (literals or ``${{parent.inputs.X}}``); absent ones are left to the component."""
    found = {}
    for section, key in (("distribution", "process_count_per_instance"),
                         ("resources", "instance_count")):
        block = job.get(section) or {}
        if not isinstance(block, Mapping):
            raise RunnerError(f"step '{step}': '{section}' must be a mapping")
        value = block.get(key)
        if isinstance(value, str) and "${{" in value:
            m = _BINDING.match(value)
            if not m or m.group(1) != "inputs" or m.group(2) not in pipeline_inputs:
                raise RunnerError(
                    f"step '{step}': {section}.{key} = {value!r} must be a number or "
                    f"${{{{parent.inputs.X}}}} naming a pipeline input "
                    f"(declared: {', '.join(sorted(pipeline_inputs)) or 'none'})")
            value = pipeline_inputs[m.group(2)]
        if value is not None:
            found[key] = value
    kind = (job.get("distribution") or {}).get("type")
    if kind is not None and str(kind).lower() != "pytorch" and found:
        raise RunnerError(f"step '{step}': distribution type '{kind}' cannot run locally; "
                          "only pytorch can")
    return found


def _topological_order(steps: Mapping[str, Mapping]) -> list[str]:
    """Kahn's algorithm; ties keep the YAML's order. A cycle raises, naming it."""
    remaining = {s: set(info["deps"]) for s, info in steps.items()}
    order: list[str] = []
    while remaining:
        ready = [s for s in remaining if not remaining[s]]
        if not ready:
            raise RunnerError(f"the pipeline's steps depend on each other in a cycle: {_find_cycle(remaining)}")
        for s in ready:
            order.append(s)
            del remaining[s]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _find_cycle(graph: Mapping[str, set[str]]) -> str:
    visiting: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return visiting[visiting.index(node):] + [node]
        if node in seen or node not in graph:
            return None
        seen.add(node)
        visiting.append(node)
        for nxt in sorted(graph[node]):
            if cycle := visit(nxt):
                return cycle
        visiting.pop()
        return None

    for start in graph:
        if cycle := visit(start):
            return " -> ".join(reversed(cycle))  # edges point at dependencies; print data-flow direction
    return ", ".join(graph)


# --------------------------------------------------------------------------------------------------
# Running


def run_pipeline(
    pipeline_path: str | os.PathLike,
    inputs: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    settings_overrides: Mapping[str, Any] | None = None,
    progress: Callable[[str], Any] | None = print,
    *,
    env: Mapping[str, str | None] | None = None,
    distribution: Mapping[str, Any] | None = None,
) -> dict:
    """Run every step of a pipeline job YAML locally, in dependency order.

    Each step writes to ``output_dir/<step>/<output>``; ``output_dir`` defaults to
    ``./local_runs/<pipeline-stem>-<YYYYmmdd-HHMMSS>``. ``inputs`` override the pipeline's top-level
    inputs (unknown names raise). ``settings_overrides`` are merged over the YAML's ``settings``; only
    ``continue_on_step_failure`` has an effect locally (other steps go on, dependants are skipped, and
    a :class:`PipelineRunError` is raised at the end).

    Steps whose component declares ``distribution: {type: pytorch}`` run on the step's
    ``process_count_per_instance`` x ``instance_count`` processes; ``distribution`` (keys
    ``process_count_per_instance``, ``instance_count``) overrides both for every such step.

    Returns ``{"steps": {step: {output: Path}}, "outputs": {pipeline_output: Path}, "output_dir": Path}``.
    """
    plan = plan_pipeline(pipeline_path, inputs)
    settings = dict(plan["doc"].get("settings") or {})
    settings.update(settings_overrides or {})
    keep_going = _truthy(settings.get("continue_on_step_failure", False))
    say = progress or (lambda _msg: None)

    if output_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output_dir = Path.cwd() / "local_runs" / f"{plan['path'].stem}-{stamp}"
    root = Path(output_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {"steps": {}, "outputs": {}, "output_dir": root}
    failed: list[str] = []
    skipped: list[str] = []
    order = plan["order"]
    total = len(order)
    with WarmStarter() as warm:  # the steps fork from one warm interpreter (runner/warm.py)
        for index, step in enumerate(order, start=1):
            info = plan["steps"][step]
            prefix = f"[{index}/{total}] {step}"
            blocked = sorted(d for d in info["deps"] if d in failed or d in skipped)
            if blocked:
                skipped.append(step)
                say(f"{prefix}: skipped (upstream step failed: {', '.join(blocked)})")
                continue
            values = dict(info["inputs"])
            for key, (src, out) in info["refs"].items():
                values[key] = result["steps"][src][out]
            step_env = {**info["env"], **(env or {})}
            say(f"{prefix}: running {_component_name(info['spec'])} ...")
            started = time.monotonic()
            try:
                scale = dict(info["distribution"])
                if info["spec"].get("distribution"):  # an override scales only distributed steps
                    scale.update({k: v for k, v in (distribution or {}).items() if v is not None})
                outputs = run_component(info["spec"], values, root / step, env=step_env,
                                        distribution=scale, warm=warm)
            except (ComponentRunError, RunnerError) as exc:
                elapsed = time.monotonic() - started
                say(f"{prefix}: failed after {elapsed:.1f}s")
                if not keep_going:
                    raise PipelineRunError(f"pipeline step '{step}' failed: {exc}", result=result,
                                           failed=[step], skipped=[s for s in order[index:]]) from exc
                failed.append(step)
                continue
            say(f"{prefix}: done in {time.monotonic() - started:.1f}s")
            result["steps"][step] = outputs
            for out, target in info["bound_outputs"].items():
                result["outputs"][target] = outputs[out]

    if failed:
        raise PipelineRunError(
            f"pipeline finished with failed step(s): {', '.join(failed)}"
            + (f"; skipped: {', '.join(skipped)}" if skipped else ""),
            result=result, failed=failed, skipped=skipped,
        )
    return result


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
