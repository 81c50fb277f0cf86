"""Errors and the load report shared by every KG and corpus reader."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class KGFormatError(ValueError):
    """Bad input in a KG or corpus file; the message starts with ``file:line:`` like a compiler's.

    ``line`` is 1-based and counts physical lines, header lines included, so editors jump straight to it.
    ``line`` is ``None`` for problems that concern a whole file (a missing file, a wrong count line total).
    """

    def __init__(self, file: str | Path, line: int | None, message: str):
        self.file = str(file)
        self.line = line
        self.reason = message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {message}")


@dataclass
class Problem:
    """One bad or suspicious row that was tolerated (skipped or kept) rather than raised."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class LoadReport:
    """What a reader tolerated: rows it skipped (only with ``skip_bad_rows=True``) and duplicates it kept.

    Nothing is dropped silently: every skipped row and every duplicate is listed here and logged.
    """

    skipped: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def num_duplicates(self) -> int:
        return len(self.duplicates)

    def num_skipped_in(self, file: str | Path) -> int:
        """How many rows of one file were skipped (a count line must still agree with them)."""
        return sum(1 for p in self.skipped if p.file == str(file))

    def skip(self, error: KGFormatError) -> None:
        self.skipped.append(Problem(error.file, error.line, error.reason))

    def duplicate(self, file: str | Path, line: int | None, message: str) -> None:
        self.duplicates.append(Problem(str(file), line, message))

    def log(self, log: logging.Logger = logger, max_listed: int = 5) -> None:
        """Log a summary: counts, and the first few problems of each kind."""
        for title, rows in (("skipped bad rows", self.skipped), ("duplicate rows", self.duplicates)):
            if not rows:
                continue
            listed = "; ".join(str(p) for p in rows[:max_listed])
            more = f" (and {len(rows) - max_listed} more)" if len(rows) > max_listed else ""
            log.warning("%d %s: %s%s", len(rows), title, listed, more)
        for note in self.notes:
            log.info(note)

    def __str__(self) -> str:
        return f"LoadReport(skipped={self.num_skipped}, duplicates={self.num_duplicates})"
