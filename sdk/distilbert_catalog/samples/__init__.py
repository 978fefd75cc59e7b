"""Project-written sample data bundled with the package, in the real dataset schemas."""

from pathlib import Path


def sample_dir(name: str | None = None) -> Path:
    """The folder of bundled samples, or of one sample set (``emotion``, ``squad_v2``,
    ``conll2003``, ``wikipedia_mask_filling``)."""
    root = Path(__file__).parent
    return root / name if name else root
