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

This module schedules (hands out mini-batches, retries, stops at the threshold). The settings and
the deployment YAML adapter are in :mod:`.batch_settings`, the worker protocol in
:mod:`.batch_worker`, and the committed parts (names, atomic writes, the join) in
:mod:`.batch_parts`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from dataclasses import asdict
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from distilbert_catalog.runner import batch_parts as parts
from distilbert_catalog.runner.batch_settings import (BatchDeploymentFile, BatchRunError,
                                                      BatchSettings, BatchThresholdExceeded,
                                                      load_batch_deployment_file)
from distilbert_catalog.runner.batch_worker import Worker, worker_main
from distilbert_catalog.runner.process import check_script_and_model

__all__ = ["BatchRunError", "BatchThresholdExceeded", "BatchSettings", "BatchDeploymentFile",
           "load_batch_deployment_file", "run_batch"]


def _input_files(input_path: Path, out_dir: Path) -> list[Path]:
    if input_path.is_file():
        return [input_path]
    if input_path.is_dir():
        return sorted(p for p in input_path.rglob("*")
                      if p.is_file() and out_dir not in p.parents)
    raise BatchRunError(f"batch input not found: {input_path}")


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
    parts_dir = out_dir / parts.PARTS
    parts_dir.mkdir(exist_ok=True)
    for leftover in parts_dir.glob(".*.tmp"):  # from a run killed while it wrote
        leftover.unlink()

    size = int(settings.mini_batch_size)
    batches = [files[i:i + size] for i in range(0, len(files), size)]
    context = [str(model), parts.fingerprint(script),
               sorted(settings.environment_variables.items())]
    names = parts.part_names(batches, context)
    done = {i for i, name in enumerate(names) if parts.part_path(parts_dir, name).exists()}
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
        self.failed_rows = sum(parts.failed_rows(parts.read_part(self.part(i))) for i in done)
        self.workers: list[Worker] = []
        self.env = {**{k: v for k, v in _thread_env(settings).items() if k not in os.environ},
                    **settings.environment_variables,
                    "AZUREML_MODEL_DIR": str(model), "AZUREML_BI_OUTPUT_PATH": str(out_dir)}
        self.context = multiprocessing.get_context("spawn")
        self.bar = tqdm(total=len(batches), initial=len(done), unit="mini-batch",
                        desc="batch scoring", file=sys.stderr, disable=not progress,
                        dynamic_ncols=True)
        self.aborted: str | None = None

    def part(self, index: int, failed: bool = False) -> Path:
        return parts.part_path(self.parts_dir, self.names[index], failed)

    # --- workers ----------------------------------------------------------------------------
    def spawn(self) -> Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=worker_main, daemon=True,
                                       args=(child, str(self.script), str(self.code), self.env))
        process.start()
        child.close()
        return Worker(process, parent)

    def retire(self, worker: Worker) -> None:
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

    def service(self, worker: Worker, timeout: float) -> None:
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

    def handle(self, worker: Worker, kind: str, index, payload) -> None:
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
        frame = parts.failed_frame(self.batches[index],
                                   f"mini-batch failed after {tries} attempt(s): {reason}")
        parts.write_csv(self.part(index, failed=True), frame)
        self.count(self.part(index, failed=True))

    def commit(self, index: int, frame) -> None:
        parts.write_csv(self.part(index), frame)
        with contextlib.suppress(FileNotFoundError):
            self.part(index, failed=True).unlink()
        self.count(self.part(index))

    def count(self, part: Path) -> None:
        self.failed_rows += parts.failed_rows(parts.read_part(part))  # as the output will read
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
        committed = (self.part(i) if self.part(i).exists() else self.part(i, failed=True)
                     for i in range(len(self.batches)))
        joined = parts.join([path for path in committed if path.exists()])
        failed = parts.failed_rows(joined)
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
            parts.write_csv(out_path, joined)
            parts.remove_stale(self.parts_dir, self.names)
        parts.write_atomically(self.out_dir / parts.SUMMARY,
                               lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
        if self.aborted:
            raise BatchThresholdExceeded(f"batch run stopped: {self.aborted}; committed "
                                         f"mini-batches are kept for a rerun", summary)
        return out_path, summary


def _thread_env(settings: BatchSettings) -> dict[str, str]:
    """Split the machine's cores between the workers, unless the user chose thread counts."""
    threads = max(1, (os.cpu_count() or 1) // int(settings.max_concurrency_per_instance))
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
