"""The ``distilbert-catalog`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .errors import CatalogError


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CatalogError(f"{flag} expects NAME=VALUE; got {item!r}")
        pairs[name] = value
    return pairs


def cmd_run(args) -> int:
    from .runner.component import run_component
    from .runner.pipeline import run_pipeline
    from .tracking import child_env

    with open(args.yaml) as f:
        kind = (yaml.safe_load(f) or {}).get("type")
    inputs = {**_pairs(args.input, "--input"), **_pairs(args.set, "--set")}
    out = Path(args.output_dir)
    env = child_env(out / "mlruns")
    scale = {"process_count_per_instance": args.process_count,
             "instance_count": args.instance_count}
    if kind == "pipeline":
        result = run_pipeline(args.yaml, inputs=inputs, output_dir=out, env=env,
                              distribution=scale)
        print(json.dumps({k: {n: str(p) for n, p in v.items()} if isinstance(v, dict) else str(v)
                          for k, v in result.items() if k != "steps"}, indent=2))
    elif kind == "command":
        outputs = run_component(args.yaml, inputs, out, env=env, distribution=scale)
        print(json.dumps({name: str(path) for name, path in outputs.items()}, indent=2))
    else:
        raise CatalogError(f"{args.yaml}: type must be 'command' or 'pipeline'; got {kind!r}")
    return 0


def cmd_serve(args) -> int:
    from .serving import SCORE_SCRIPT
    from .runner.endpoints import serve_forever

    return serve_forever(SCORE_SCRIPT, args.model, port=args.port, host=args.host)


def cmd_invoke(args) -> int:
    from .runner.endpoints import invoke

    payload = Path(args.request_file).read_text()
    status, body = invoke(args.url, payload)
    print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
    return 0 if status < 400 else 1


def cmd_batch(args) -> int:
    from .runner.batch import (BatchSettings, BatchThresholdExceeded, load_batch_deployment_file,
                               run_batch)

    if args.deployment:
        deployment = load_batch_deployment_file(args.deployment)
        settings, script, code = deployment.settings, deployment.scoring_script, deployment.code_dir
    else:
        script = Path(__file__).resolve().parent / "serving" / "batch_score.py"
        settings, code = BatchSettings(), None
    overrides = {name: value for name, value in (
        ("mini_batch_size", args.mini_batch_size),
        ("max_concurrency_per_instance", args.max_concurrency),
        ("max_retries", args.max_retries), ("timeout", args.timeout),
        ("error_threshold", args.error_threshold), ("output_file_name", args.output_file),
    ) if value is not None}
    try:
        _, summary = run_batch(script, args.model, args.input, args.output_dir, settings,
                               code_dir=code, progress=not args.no_progress, **overrides)
    except BatchThresholdExceeded as exc:
        print(json.dumps(exc.summary, indent=2))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def cmd_quickstart(args) -> int:
    from .quickstart import quickstart

    summary = quickstart(args.output_dir)
    return 0 if summary["http_status"] == 200 else 1


def cmd_card(args) -> int:
    from .model_pages import render_index, render_model_page

    if args.model:
        print(render_model_page(args.model, args.metrics or (), args.output_dir))
    if args.index or not args.model:
        print(render_index(args.output_dir if not args.model else None))
    return 0


def cmd_specs(args) -> int:
    from .components import write_specs

    changed = write_specs(args.root, check=args.check)
    for path in changed:
        print(("out of date: " if args.check else "wrote ") + str(path))
    return 1 if args.check and changed else 0


def cmd_package(args) -> int:
    from .mlflow_model import package_model

    path = package_model(args.model, args.output_dir, task_name=args.task)
    print(path)
    return 0


def cmd_pretrained(args) -> int:
    from .pretrained import pretrained_distilbert

    print(pretrained_distilbert(args.cache_dir))
    return 0


def cmd_tiny_model(args) -> int:
    from .tiny import build_tiny_model

    print(build_tiny_model(args.output_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="distilbert-catalog", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a component spec.yaml or a pipeline YAML locally")
    run.add_argument("yaml")
    run.add_argument("--input", action="append", metavar="NAME=PATH", help="a data/model input")
    run.add_argument("--set", action="append", metavar="NAME=VALUE", help="a literal input")
    run.add_argument("--output-dir", default="out")
    run.add_argument("--process-count", type=int, metavar="N",
                     help="processes per node for components with distribution: pytorch "
                          "(Azure ML's process_count_per_instance; default: the YAML's)")
    run.add_argument("--instance-count", type=int, metavar="M",
                     help="simulated nodes on this machine, on loopback (Azure ML's "
                          "resources.instance_count; default: the YAML's)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve a model under azmlinfsrv (Ctrl-C or SIGTERM stops)")
    serve.add_argument("model", help="MLflow model folder, HF model folder")
    serve.add_argument("--port", type=int, default=5001)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0: all "
                            "interfaces, reachable from the network)")
    serve.set_defaults(func=cmd_serve)

    invoke = sub.add_parser("invoke", help="POST a JSON request file to a scoring URL")
    invoke.add_argument("--request-file", required=True)
    invoke.add_argument("--url", default="http://127.0.0.1:5001/score")
    invoke.set_defaults(func=cmd_invoke)

    batch = sub.add_parser(
        "batch", help="score a file or folder like a batch endpoint (exit 1: too many failed rows)",
        description="Score every file under INPUT like an Azure ML batch deployment: worker "
        "processes, retries, one CSV row per input row. A rerun into the same --output-dir skips "
        "finished mini-batches. Settings come from --deployment (else Azure ML's defaults); the "
        "flags below override them.")
    batch.add_argument("model", help="MLflow model folder or Hugging Face model folder")
    batch.add_argument("input", help="a file, or a folder of jsonl/json/csv/parquet/txt files")
    batch.add_argument("--output-dir", default="batch-out")
    batch.add_argument("--deployment", metavar="YAML",
                       help="batch deployment YAML: settings and scoring script")
    batch.add_argument("--mini-batch-size", type=int, help="files per mini-batch (10)")
    batch.add_argument("--max-concurrency", type=int,
                       help="worker processes, max_concurrency_per_instance (1)")
    batch.add_argument("--max-retries", type=int, help="retries of a failed mini-batch (3)")
    batch.add_argument("--timeout", type=float, help="seconds per mini-batch attempt (300)")
    batch.add_argument("--error-threshold", type=int,
                       help="fail once more rows than this failed; -1 never fails (-1)")
    batch.add_argument("--output-file", help="output file name (predictions.csv)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(func=cmd_batch)

    qs = sub.add_parser("quickstart", help="emotion pipeline end to end on bundled data")
    qs.add_argument("--output-dir", default="quickstart-out")
    qs.set_defaults(func=cmd_quickstart)

    card = sub.add_parser("card", help="render a catalog model page from metrics.json files "
                          "(and the index of all models)")
    card.add_argument("--model", help="catalog model, e.g. distilbert-base-cased (none: the index)")
    card.add_argument("--metrics", nargs="+", metavar="METRICS_JSON",
                      help="evaluation metrics.json files (or their folders) for the table")
    card.add_argument("--output-dir", help="where README.md goes (default: model_cards/<model>/, "
                      "the index: model_cards/)")
    card.add_argument("--index", action="store_true", help="also rewrite model_cards/README.md")
    card.set_defaults(func=cmd_card)

    specs = sub.add_parser("specs", help="regenerate components/*/spec.yaml from the sdk")
    specs.add_argument("--root", default=".")
    mode = specs.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="(default) write the files")
    mode.add_argument("--check", action="store_true", help="fail if any file is out of date")
    specs.set_defaults(func=cmd_specs)

    package = sub.add_parser("package", help="package a hub id or HF model folder as a "
                             "deployable MLflow model (e.g. a base checkpoint as fill-mask)")
    package.add_argument("model", help="hub id or Hugging Face model folder")
    package.add_argument("output_dir", help="where the MLflow model folder is written")
    package.add_argument("--task", help="task name (default: from the model's head)")
    package.set_defaults(func=cmd_package)

    pretrained = sub.add_parser(
        "pretrained", help="print the folder of the pretrained offline DistilBERT (all-MiniLM-"
        "L6-v2 weights), building it on first use")
    pretrained.add_argument("--cache-dir", help="cache folder (default: $DISTILBERT_CATALOG_CACHE "
                            "or ~/.cache/distilbert-catalog)")
    pretrained.set_defaults(func=cmd_pretrained)

    tiny = sub.add_parser("tiny-model", help="build the tiny offline DistilBERT")
    tiny.add_argument("output_dir")
    tiny.set_defaults(func=cmd_tiny_model)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
