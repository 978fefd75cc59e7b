"""Child processes the runners start, and stop: politely first, then for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def check_script_and_model(entry_script: str | os.PathLike, model_dir: str | os.PathLike,
                           error: type[Exception]) -> tuple[Path, Path]:
    """The scoring script and model folder a server or batch run starts from, as absolute paths;
    ``error`` (the runner's own exception type) names the one that does not exist."""
    script = Path(entry_script).expanduser().resolve()
    model = Path(model_dir).expanduser().resolve()
    if not script.is_file():
        raise error(f"scoring script not found: {script}")
    if not model.exists():
        raise error(f"model folder not found: {model}")
    return script, model


def stop(process: subprocess.Popen, *, timeout: float = 10.0, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; ``group`` signals the child's process group
    (a server's master and workers), which needs ``start_new_session=True`` at start."""
    if process.poll() is not None:
        return
    by_group = group and os.name == "posix"
    try:
        if by_group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with contextlib.suppress(ProcessLookupError):
            if by_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()
