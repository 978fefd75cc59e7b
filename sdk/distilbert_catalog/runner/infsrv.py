"""``azmlinfsrv`` (the Azure ML inference server: its own CLI, settings and app) on a chosen host.

azmlinfsrv 1.x always binds ``0.0.0.0``: a model served "locally" would be reachable from the
network. This launcher runs the server's own entry point unchanged except for the host it hands
to gunicorn, so a local server binds ``127.0.0.1`` unless asked otherwise::

    python -m distilbert_catalog.runner.infsrv --host 127.0.0.1 --entry_script score.py \\
        --model_dir model --port 5001

Everything after ``--host HOST`` is azmlinfsrv's own command line. The process is the gunicorn
master (as with ``azmlinfsrv``), its workers are its children.
"""

from __future__ import annotations

import sys

DEFAULT_HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    host = DEFAULT_HOST
    if argv[:1] == ["--host"]:
        if len(argv) < 2:
            raise SystemExit("--host needs a value, e.g. --host 127.0.0.1")
        host, argv = argv[1], argv[2:]
    from azureml_inference_server_http import amlserver

    if not hasattr(amlserver, "DEFAULT_HOST"):  # pragma: no cover - a future server version
        raise SystemExit("this azureml-inference-server-http version has no DEFAULT_HOST; "
                         "cannot choose the host it binds")
    amlserver.DEFAULT_HOST = host  # amlserver.run() passes it to gunicorn as -b HOST:PORT
    sys.argv = ["azmlinfsrv", *argv]
    amlserver.run()


if __name__ == "__main__":
    main()
