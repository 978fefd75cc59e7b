"""Load datasets by hub name or from local files and folders, and locate rows for error messages.

Azure ML hands a component its data as a path: a single file (``uri_file``) or a folder
(``uri_folder``). Locally the same paths work; anything that is not an existing path is taken as
a Hugging Face hub dataset name. Every loaded dataset remembers which file each row came from, so
a validation error can say "file train.jsonl, row 17, column 'label': ...".
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from .errors import CatalogError, DataError

if TYPE_CHECKING:  # datasets loads on first use: a scoring process never needs it
    import datasets

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}


@dataclass
class Data:
    """A dataset plus the provenance needed to point at a row: (source, first row index) pairs."""

    dataset: datasets.Dataset
    sources: list[tuple[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dataset)

    def locate(self, index: int) -> tuple[str, int]:
        """Map a row index of the combined dataset to (source, 1-based row within that source)."""
        starts = [start for _, start in self.sources]
        k = bisect.bisect_right(starts, index) - 1
        source, start = self.sources[k]
        return source, index - start + 1

    def error(self, index: int, column: str | None, message: str) -> DataError:
        source, row = self.locate(index)
        return DataError(message, source=source, row=row, column=column)

    def require_columns(self, columns: Iterable[str], what: str = "column") -> None:
        present = self.dataset.column_names
        for column in columns:
            if column not in present:
                raise DataError(
                    f"missing {what} '{column}'; the data has columns {present}. "
                    f"Map your column with the matching *_key input.",
                    source=self.sources[0][0] if self.sources else None)

    def check_rows(self, column: str, is_valid: Callable[[object], bool], expected: str) -> None:
        """Raise for the first row whose ``column`` value fails ``is_valid``."""
        for index, value in enumerate(self.dataset[column]):
            if not is_valid(value):
                raise self.error(index, column, f"expected {expected}, got {value!r}")


def is_text(value) -> bool:
    """A non-empty, non-blank string: what every text column and word must hold."""
    return isinstance(value, str) and bool(value.strip())


def data_files(folder: str | Path) -> list[Path]:
    """Every supported data file under ``folder``, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith("."))


def split_files(folder: str | Path, split: str) -> list[Path]:
    """The files of ``folder`` named after ``split`` (``validation.jsonl``, ``dev/part.parquet``)."""
    names = SPLIT_ALIASES.get(split, (split,))
    return [p for p in data_files(folder)
            if p.stem.lower() in names or p.parent.name.lower() in names]


def _load_file(path: Path) -> datasets.Dataset:
    builder = FORMATS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"unsupported file type '{path.suffix}'; use one of {sorted(FORMATS)}",
                        source=str(path))
    import datasets

    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # noqa: BLE001 - any parse failure is a data error for the user
        raise DataError(f"could not read {builder} data: {exc}", source=str(path)) from exc


def _concatenate(parts: list[datasets.Dataset], files: list[Path]) -> datasets.Dataset:
    """Concatenate files of one dataset, aligning column types (csv strings vs json strings)."""
    import datasets

    features = parts[0].features
    aligned = [parts[0]]
    for part, file in zip(parts[1:], files[1:]):
        try:
            aligned.append(part if part.features == features else part.cast(features))
        except (ValueError, TypeError) as exc:
            raise DataError(f"its columns {part.column_names} do not match those of {files[0]} "
                            f"({parts[0].column_names}): {exc}", source=str(file)) from exc
    return datasets.concatenate_datasets(aligned)


def load_data(source: str | Path, *, split: str | None = None, config: str | None = None) -> Data:
    """Load ``source``: a local file, a local folder of files, or a hub dataset name.

    For a folder, files named after ``split`` (e.g. ``validation.jsonl`` or ``dev/part-0.parquet``)
    are chosen when present; otherwise every supported file in the folder is used.
    """
    path = Path(source)
    if path.exists():
        if path.is_dir():
            files = (split_files(path, split) if split else []) or data_files(path)
        else:
            files = [path]
        if not files:
            raise DataError(f"no {'/'.join(sorted(FORMATS))} files found", source=str(path))
        parts, sources, start = [], [], 0
        for file in files:
            part = _load_file(file)
            parts.append(part)
            sources.append((str(file), start))
            start += len(part)
        dataset = parts[0] if len(parts) == 1 else _concatenate(parts, files)
    else:
        import datasets

        try:
            dataset = datasets.load_dataset(str(source), config, split=split or "train")
        except Exception as exc:  # noqa: BLE001
            raise DataError(
                f"'{source}' is not a local file or folder, and loading it from the Hugging Face "
                f"hub failed ({type(exc).__name__}: {exc}). Pass a local jsonl/csv/parquet path "
                f"or a hub dataset name that is reachable.", source=str(source)) from exc
        sources = [(f"{source}[{split or 'train'}]", 0)]
    data = Data(dataset, sources)
    if len(data) == 0:
        raise DataError("the dataset is empty", source=sources[0][0] if sources else str(source))
    return data


def rename_columns(data: Data, mapping: dict[str, str]) -> Data:
    """Rename user columns (``{user_name: canonical_name}``) after checking they exist."""
    data.require_columns(mapping)
    mapping = {src: dst for src, dst in mapping.items() if src != dst}
    if mapping:
        data.dataset = data.dataset.rename_columns(mapping)
    return data


def load_split(local_path: str | None, data_args, split: str) -> Data:
    """Load ``split`` from a local file/folder, else from the hub dataset in ``data_args``
    (anything with ``dataset_name`` and ``dataset_config``)."""
    if local_path:
        return load_data(local_path, split=split)
    if data_args.dataset_name:
        return load_data(data_args.dataset_name, split=split, config=data_args.dataset_config)
    raise CatalogError("no data: give a local data path (train_data / test_data) or a hub "
                       "dataset_name")
