"""Test-only scoring script: the real ``batch_score`` plus faults switched on by environment.

- ``FAULT_CRASH_ON=<file name>``: the first attempt at a mini-batch holding that file kills its
  worker process (``os._exit``, as a segfault or the OOM killer would); ``FAULT_MARKER`` names the
  file that records that the crash happened, so the retry succeeds.
- ``FAULT_DELAY=<seconds>``: sleep before scoring each mini-batch (a slow job to kill mid-way).
"""

import os
import time

from distilbert_catalog.serving import batch_score


def init():
    batch_score.init()


def run(mini_batch):
    crash_on, marker = os.environ.get("FAULT_CRASH_ON"), os.environ.get("FAULT_MARKER")
    if crash_on and any(os.path.basename(p) == crash_on for p in mini_batch):
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(f"crashed on {crash_on}\n")
            os._exit(70)
    time.sleep(float(os.environ.get("FAULT_DELAY", "0")))
    return batch_score.run(mini_batch)
