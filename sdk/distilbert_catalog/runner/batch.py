"""A local batch endpoint: Azure ML's parallel-run semantics for a scoring script, on one machine.

:func:`run_batch` splits the input files (a file, or every file under a folder, sorted) into
mini-batches of ``mini_batch_size`` files and hands them to ``max_concurrency_per_instance`` worker
processes (``spawn``). Each worker imports the scoring script with ``AZUREML_MODEL_DIR`` and
``AZUREML_BI_OUTPUT_PATH`` set, calls ``init()`` once, then ``run(mini_batch)`` per mini-batch it
gets, and ``shutdown()`` (if defined) at the end.

* A mini-batch whose ``run`` raises, whose worker dies, or that passes ``timeout`` seconds is
  retried, up to ``max_retries`` times (a dead or stuck worker is replaced). One that still fails
  gives one error row per file.
* Every finished mini-batch is committed atomically as a part file under ``DIR/.parts/``, named by
  its position and a key of its files (path, size, mtime), the model, the script and the
  environment. A rerun into the same folder skips committed mini-batches, so killing the runner and
  rerunning gives the same output as one clean run.
* The parts are joined in input order into one CSV file (``output_file_name``, header row, quoted
  as needed) next to ``summary.json`` (files, rows, succeeded, failed, mini_batches, retries, ...).
* Failed rows are the rows with a non-empty ``error`` column. Once they exceed
  ``error_threshold`` (-1: never) the run stops with :class:`BatchThresholdExceeded`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import multiprocessing
import os
import sys
import time
import traceback
import uuid
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Mapping

from distilbert_catalog.assets import code_dir as resolve_code_dir
from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.process import check_script_and_model

__all__ = ["BatchRunError", "BatchThresholdExceeded", "BatchSettings", "BatchDeploymentFile",
           "load_batch_deployment_file", "run_batch"]

PARTS = ".parts"
SUMMARY = "summary.json"
FILE, ROW, ERROR = "file", "row", "error"


class BatchRunError(CatalogError, RuntimeError):
    """A local batch run could not run: bad arguments, a missing script, or a failing ``init()``."""


class BatchThresholdExceeded(BatchRunError):
    """More rows failed than ``error_threshold`` allows; the summary is still written."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


@dataclass
class BatchSettings:
    """The parallel-run settings of a batch deployment (Azure ML's defaults, but a longer timeout)."""

    mini_batch_size: int = 10
    max_concurrency_per_instance: int = 1
    max_retries: int = 3
    timeout: float = 300.0
    error_threshold: int = -1
    output_file_name: str = "predictions.csv"
    environment_variables: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("mini_batch_size", "max_concurrency_per_instance"):
            if int(getattr(self, name)) < 1:
                raise BatchRunError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.max_retries) < 0:
            raise BatchRunError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not float(self.timeout) > 0:
            raise BatchRunError(f"timeout must be positive seconds, got {self.timeout}")
        if int(self.error_threshold) < -1:
            raise BatchRunError(f"error_threshold must be -1 (never fail) or more, got "
                                f"{self.error_threshold}")
        name = self.output_file_name
        if not name or Path(name).name != name or name in (".", "..", SUMMARY, PARTS):
            raise BatchRunError(f"output_file_name must be a plain file name other than {SUMMARY}, "
                                f"got {name!r}")


@dataclass
class BatchDeploymentFile:
    """What a batch deployment YAML says about running it: settings and the scoring script."""

    settings: BatchSettings
    scoring_script: Path
    code_dir: Path


def load_batch_deployment_file(path: str | os.PathLike) -> BatchDeploymentFile:
    """Read a ``batchDeployment`` YAML with azure-ai-ml's own loader (offline)."""
    from azure.ai.ml import load_batch_deployment

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BatchRunError(f"deployment file not found: {path}")
    try:
        with warnings.catch_warnings():  # azure-ai-ml nudges towards ModelBatchDeployment
            warnings.filterwarnings("ignore", "This class is intended as a base class")
            deployment = load_batch_deployment(source=path)
    except Exception as exc:  # noqa: BLE001 - azure-ai-ml's validation errors say what is wrong
        raise BatchRunError(f"{path}: not a valid batch deployment: {exc}") from None
    defaults = BatchSettings()
    retry = deployment.retry_settings
    settings = BatchSettings(
        mini_batch_size=_first(deployment.mini_batch_size, defaults.mini_batch_size),
        max_concurrency_per_instance=_first(deployment.max_concurrency_per_instance,
                                            defaults.max_concurrency_per_instance),
        max_retries=_first(getattr(retry, "max_retries", None), defaults.max_retries),
        timeout=_first(getattr(retry, "timeout", None), defaults.timeout),
        error_threshold=_first(deployment.error_threshold, defaults.error_threshold),
        output_file_name=_first(deployment.output_file_name, defaults.output_file_name),
        environment_variables={str(k): str(v) for k, v in
                               (deployment.environment_variables or {}).items()},
    )
    code = deployment.code_configuration
    if code is None or not code.scoring_script:
        raise BatchRunError(f"{path}: code_configuration with code and scoring_script is required")
    code_dir = resolve_code_dir((path.parent / str(code.code)).resolve(), code.scoring_script)
    return BatchDeploymentFile(settings, code_dir / code.scoring_script, code_dir)


def _first(value, default):
    return default if value is None else value


# --------------------------------------------------------------------------------------------------
# Worker process


def _as_frame(result: Any):
    """A ``run()`` result as a DataFrame: DataFrames as they are, lists of dicts or of values."""
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        result = result.tolist()
    if result is None or isinstance(result, (str, bytes, Mapping)) or not hasattr(result, "__iter__"):
        raise TypeError("run() must return a pandas DataFrame or a list (one item per processed "
                        f"input), got {type(result).__name__}")
    items = list(result)
    if items and all(isinstance(item, Mapping) for item in items):
        return pd.DataFrame(items)
    return pd.DataFrame({"result": items})


def _short_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _worker_main(conn, script: str, code_dir: str, env: dict[str, str]) -> None:
    """Import the scoring script, ``init()`` once, then ``run()`` every mini-batch sent."""
    os.environ.update(env)
    for folder in (code_dir, str(Path(script).parent)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"_batch_driver_{uuid.uuid4().hex}", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise AttributeError(f"{Path(script).name} must define {name}()")
        module.init()
    except BaseException as exc:  # noqa: BLE001 - reported to the runner, which stops the run
        conn.send(("init_failed", None, "".join(traceback.format_exception(exc))))
        return
    conn.send(("ready", None, None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the runner is gone
            return
        if message is None:
            break
        index, files = message
        try:
            result = module.run(list(files))
        except Exception as exc:  # noqa: BLE001 - the mini-batch failed; the runner retries it
            traceback.print_exc(file=sys.stderr)
            conn.send(("failed", index, _short_error(exc)))
            continue
        try:
            frame = _as_frame(result)
        except TypeError as exc:  # a bug in the script, not in the data: the runner stops
            conn.send(("bad_result", index, str(exc)))
        else:
            conn.send(("done", index, frame))
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        shutdown()


@dataclass
class _Worker:
    process: Any
    conn: Any
    ready: bool = False
    job: int | None = None
    started: float = 0.0


# --------------------------------------------------------------------------------------------------
# Parts: one committed CSV per finished mini-batch


def _input_files(input_path: Path, out_dir: Path) -> list[Path]:
    if input_path.is_file():
        return [input_path]
    if input_path.is_dir():
        return sorted(p for p in input_path.rglob("*")
                      if p.is_file() and out_dir not in p.parents)
    raise BatchRunError(f"batch input not found: {input_path}")


def _fingerprint(path: Path) -> list:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _part_names(batches: list[list[Path]], context: list) -> list[str]:
    names = []
    for number, batch in enumerate(batches):
        key = json.dumps([context, [_fingerprint(p) for p in batch]], sort_keys=True)
        names.append(f"{number:05d}-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
    return names


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _commit(path: Path, frame) -> None:
    _write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


def _failed_frame(batch: list[Path], reason: str):
    import pandas as pd

    return pd.DataFrame({FILE: [p.name for p in batch], ROW: pd.array([None] * len(batch), "Int64"),
                         ERROR: [reason] * len(batch)})


def _read_part(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _failed_rows(frame) -> int:
    return int((frame[ERROR] != "").sum()) if ERROR in frame.columns else 0


# --------------------------------------------------------------------------------------------------
# The runner


def run_batch(
    entry_script: str | os.PathLike,
    model_dir: str | os.PathLike,
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: BatchSettings | None = None,
    *,
    code_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **overrides: Any,
) -> tuple[Path, dict]:
    """Score every file under ``input_path`` with ``entry_script`` like a batch deployment.

    ``settings`` (default :class:`BatchSettings`) may be overridden field by field with keyword
    arguments (``mini_batch_size=2``, ``error_threshold=0``, ...). ``code_dir`` (the deployment's
    ``code`` folder) goes on the workers' ``sys.path`` with the script's folder. Returns
    ``(output_file, summary)``; raises :class:`BatchThresholdExceeded` when too many rows failed.
    """
    settings = settings or BatchSettings()
    unknown = sorted(set(overrides) - set(BatchSettings.__dataclass_fields__))
    if unknown:
        raise BatchRunError(f"unknown batch settings {unknown}; valid: "
                            f"{sorted(BatchSettings.__dataclass_fields__)}")
    settings = BatchSettings(**{**asdict(settings), **overrides})
    settings.check()
    script, model = check_script_and_model(entry_script, model_dir, BatchRunError)
    code = Path(code_dir).expanduser().resolve() if code_dir else script.parent
    out_dir = Path(output_dir).expanduser().resolve()
    files = _input_files(Path(input_path).expanduser().resolve(), out_dir)
    if not files:
        raise BatchRunError(f"no input files under {input_path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    parts_dir = out_dir / PARTS
    parts_dir.mkdir(exist_ok=True)
    for leftover in parts_dir.glob(".*.tmp"):  # from a run killed while it wrote
        leftover.unlink()

    size = int(settings.mini_batch_size)
    batches = [files[i:i + size] for i in range(0, len(files), size)]
    context = [str(model), _fingerprint(script), sorted(settings.environment_variables.items())]
    names = _part_names(batches, context)
    done = {i for i, name in enumerate(names) if (parts_dir / f"{name}.csv").exists()}
    run = _Run(script, code, model, out_dir, settings, batches, names, parts_dir, done, progress)
    try:
        run.loop()
    finally:
        run.close()
    return run.finish()


class _Run:
    """One local batch run: hands mini-batches to workers, retries, commits parts, joins them."""

    def __init__(self, script, code, model, out_dir, settings: BatchSettings, batches, names,
                 parts_dir, done, progress):
        from tqdm.auto import tqdm

        self.script, self.code, self.out_dir, self.settings = script, code, out_dir, settings
        self.batches, self.names, self.parts_dir = batches, names, parts_dir
        self.todo = deque(i for i in range(len(batches)) if i not in done)
        self.resumed = len(done)
        self.attempts: dict[int, int] = {}
        self.retries = 0
        self.failed_batches: list[int] = []
        self.failed_rows = sum(_failed_rows(_read_part(self.part(i))) for i in done)
        self.workers: list[_Worker] = []
        self.env = {**{k: v for k, v in _thread_env(settings).items() if k not in os.environ},
                    **settings.environment_variables,
                    "AZUREML_MODEL_DIR": str(model), "AZUREML_BI_OUTPUT_PATH": str(out_dir)}
        self.context = multiprocessing.get_context("spawn")
        self.bar = tqdm(total=len(batches), initial=len(done), unit="mini-batch",
                        desc="batch scoring", file=sys.stderr, disable=not progress,
                        dynamic_ncols=True)
        self.aborted: str | None = None

    def part(self, index: int, failed: bool = False) -> Path:
        return self.parts_dir / f"{self.names[index]}{'.failed' if failed else ''}.csv"

    # --- workers ----------------------------------------------------------------------------
    def spawn(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_main, daemon=True,
                                       args=(child, str(self.script), str(self.code), self.env))
        process.start()
        child.close()
        return _Worker(process, parent)

    def retire(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self.workers.remove(worker)

    def close(self) -> None:
        """Idle workers end cleanly (``shutdown()``); busy ones (a stopped run) are killed."""
        for worker in self.workers:
            if worker.job is None:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)
        deadline = time.monotonic() + 30
        for worker in list(self.workers):
            if worker.job is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            self.retire(worker)
        self.bar.close()

    # --- the loop -----------------------------------------------------------------------------
    def loop(self) -> None:
        self.check_threshold()  # rows that failed in mini-batches committed by an earlier run
        if self.aborted:
            return
        wanted = min(int(self.settings.max_concurrency_per_instance), len(self.todo))
        self.workers = [self.spawn() for _ in range(wanted)]
        timeout = float(self.settings.timeout)
        while not self.aborted and (self.todo or any(w.job is not None for w in self.workers)):
            for worker in self.workers:
                if worker.ready and worker.job is None and self.todo:
                    worker.job = self.todo.popleft()
                    worker.started = time.monotonic()
                    worker.conn.send((worker.job, [str(p) for p in self.batches[worker.job]]))
            busy = [w.started + timeout for w in self.workers if w.job is not None]
            wait_s = max(0.0, min(busy) - time.monotonic()) + 0.05 if busy else None
            wait([w.conn for w in self.workers] + [w.process.sentinel for w in self.workers],
                 timeout=wait_s)
            for worker in list(self.workers):
                self.service(worker, timeout)
                if self.aborted:
                    break

    def service(self, worker: _Worker, timeout: float) -> None:
        try:
            while worker.conn.poll():
                kind, index, payload = worker.conn.recv()
                self.handle(worker, kind, index, payload)
        except (EOFError, OSError):
            pass  # the worker died; its exit is handled below
        if worker.process.is_alive() and not (
                worker.job is not None and time.monotonic() - worker.started > timeout):
            return
        job = worker.job
        if worker.process.is_alive():  # stuck past the timeout
            reason = f"timed out after {timeout:g}s"
        else:
            worker.process.join()
            reason = f"worker process died (exit code {worker.process.exitcode})"
            if not worker.ready:
                raise BatchRunError(f"a worker died before init() finished ({reason}); "
                                    f"{self.script.name} could not start")
        self.retire(worker)
        if job is not None:
            self.fail(job, reason)
        if self.todo or any(w.job is not None for w in self.workers):
            self.workers.append(self.spawn())

    def handle(self, worker: _Worker, kind: str, index, payload) -> None:
        if kind == "init_failed":
            raise BatchRunError(f"init() of {self.script.name} failed:\n{payload}")
        if kind == "ready":
            worker.ready = True
            return
        worker.job = None
        if kind == "bad_result":
            raise BatchRunError(f"{self.script.name}: {payload}")
        if kind == "failed":
            self.fail(index, payload)
        else:
            self.commit(index, payload)

    def fail(self, index: int, reason: str) -> None:
        tries = self.attempts[index] = self.attempts.get(index, 0) + 1
        if tries <= int(self.settings.max_retries):
            self.retries += 1
            self.todo.appendleft(index)
            self.bar.write(f"mini-batch {index + 1}/{len(self.batches)}: {reason}; retry "
                           f"{tries}/{self.settings.max_retries}", file=sys.stderr)
            return
        self.failed_batches.append(index)
        frame = _failed_frame(self.batches[index], f"mini-batch failed after {tries} attempt(s): "
                                                   f"{reason}")
        _commit(self.part(index, failed=True), frame)
        self.count(self.part(index, failed=True))

    def commit(self, index: int, frame) -> None:
        _commit(self.part(index), frame)
        with contextlib.suppress(FileNotFoundError):
            self.part(index, failed=True).unlink()
        self.count(self.part(index))

    def count(self, part: Path) -> None:
        self.failed_rows += _failed_rows(_read_part(part))  # as the joined output will read
        self.bar.update(1)
        self.bar.set_postfix(failed_rows=self.failed_rows, retries=self.retries, refresh=False)
        self.check_threshold()

    def check_threshold(self) -> None:
        threshold = int(self.settings.error_threshold)
        if 0 <= threshold < self.failed_rows:
            self.aborted = (f"{self.failed_rows} failed row(s) exceed error_threshold="
                            f"{threshold}")

    # --- output ---------------------------------------------------------------------------
    def finish(self) -> tuple[Path, dict]:
        import pandas as pd

        frames = []
        for index in range(len(self.batches)):
            for path in (self.part(index), self.part(index, failed=True)):
                if path.exists():
                    frames.append(_read_part(path))
                    break
        joined = pd.concat(frames, ignore_index=True).fillna("") if frames else pd.DataFrame()
        if ERROR in joined.columns:  # file, row, outputs..., error
            joined = joined[[c for c in joined.columns if c != ERROR] + [ERROR]]
        failed = _failed_rows(joined)
        summary = {
            "status": "failed" if self.aborted else "succeeded",
            "files": sum(len(b) for b in self.batches),
            "rows": len(joined),
            "succeeded": len(joined) - failed,
            "failed": failed,
            "mini_batches": len(self.batches),
            "failed_mini_batches": len(self.failed_batches),
            "resumed_mini_batches": self.resumed,
            "retries": self.retries,
            "error_threshold": int(self.settings.error_threshold),
            "output_file": str(self.out_dir / self.settings.output_file_name),
        }
        out_path = self.out_dir / self.settings.output_file_name
        if self.aborted:
            summary["error"] = self.aborted
            with contextlib.suppress(FileNotFoundError):
                out_path.unlink()  # a stopped run has no complete output
        else:
            _write_atomically(out_path, lambda tmp: joined.to_csv(tmp, index=False,
                                                                  lineterminator="\n"))
            current = {f"{name}{suffix}.csv" for name in self.names for suffix in ("", ".failed")}
            for stale in self.parts_dir.glob("*.csv"):
                if stale.name not in current:
                    stale.unlink()
        _write_atomically(self.out_dir / SUMMARY,
                          lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
        if self.aborted:
            raise BatchThresholdExceeded(f"batch run stopped: {self.aborted}; committed "
                                         f"mini-batches are kept for a rerun", summary)
        return out_path, summary


def _thread_env(settings: BatchSettings) -> dict[str, str]:
    """Split the machine's cores between the workers, unless the user chose thread counts."""
    threads = max(1, (os.cpu_count() or 1) // int(settings.max_concurrency_per_instance))
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
