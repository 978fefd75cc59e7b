"""The batch worker protocol: one spawned process per worker, talking to the runner over a pipe.

A worker imports the scoring script with the deployment's environment, calls ``init()`` once and
sends ``("ready", None, None)`` (or ``("init_failed", None, traceback)``). It then takes
``(index, files)`` messages and answers each with ``("done", index, frame)``, ``("failed", index,
short error)`` (the runner retries) or ``("bad_result", index, message)`` (a bug in the script: the
run stops). ``None`` ends it, after ``shutdown()`` where the script defines one.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


def as_frame(result: Any):
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


def short_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def worker_main(conn, script: str, code_dir: str, env: dict[str, str]) -> None:
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
            conn.send(("failed", index, short_error(exc)))
            continue
        try:
            frame = as_frame(result)
        except TypeError as exc:  # a bug in the script, not in the data: the runner stops
            conn.send(("bad_result", index, str(exc)))
        else:
            conn.send(("done", index, frame))
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        shutdown()


@dataclass
class Worker:
    process: Any
    conn: Any
    ready: bool = False
    job: int | None = None
    started: float = 0.0
