"""The two kinds of error a user can fix: bad data and bad requests."""

from __future__ import annotations


class CatalogError(Exception):
    """Base class for errors caused by user input, with a message that says what to fix."""


class DataError(CatalogError, ValueError):
    """A dataset problem, located by source (file or hub name), row and column."""

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.source, self.row, self.column = source, row, column
        where = ", ".join(
            part for part in (
                f"file {source}" if source else "",
                f"row {row}" if row is not None else "",
                f"column '{column}'" if column else "",
            ) if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class BadRequest(CatalogError, ValueError):
    """A client error in a scoring request; serving turns it into HTTP ``status`` (400)."""

    status = 400


class PayloadTooLarge(BadRequest):
    """A request past a size limit (body bytes, items, characters): HTTP 413."""

    status = 413
