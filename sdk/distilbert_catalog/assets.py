"""Where the catalog's own files live: pipelines, component specs, deployments and card folders.

They ship inside the package, under ``_assets/``, so a checkout and an installed wheel find the
same files. ``_assets/`` mirrors the repository's layout for every file the catalog's YAML names:
in a checkout its entries are links to the repository's folders (the files users open and
``az ml`` reads: ``pipelines/``, ``components/``, ``model_cards/``, and the bundled samples at
``sdk/distilbert_catalog/samples``, which pipelines name as ``../sdk/...``); building the wheel
copies them in (``[tool.setuptools.package-data]``), so relative paths in the YAML resolve the
same way in both.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "_assets"


def asset_dir(name: str) -> Path:
    """``pipelines``, ``components`` or ``model_cards``: the real folder (links resolved, so
    paths in messages are the repository's own in a checkout)."""
    folder = (ASSETS_DIR / name).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"the catalog's {name}/ folder is missing from {ASSETS_DIR}; "
                                "reinstall distilbert-catalog")
    return folder


def code_dir(declared: Path, scoring_script: str) -> Path:
    """The folder a deployment's ``code_configuration.code`` names, where ``scoring_script``
    lives. The catalog's deployments name the SDK's source folder (``sdk/`` in a checkout);
    an installed catalog has no such folder, and its scripts are where the package is installed.
    """
    if (declared / scoring_script).is_file():
        return declared
    installed = PACKAGE_DIR.parent
    if scoring_script.startswith(f"{PACKAGE_DIR.name}/") and (installed / scoring_script).is_file():
        return installed
    return declared
